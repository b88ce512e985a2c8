"""Shipped trained models and their loaders."""
