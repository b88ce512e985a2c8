"""Emulated headset-to-edge link: rate, delay, loss and a bounded queue, in user space."""
