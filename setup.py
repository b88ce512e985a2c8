"""ament_python package neulens_ros: installs with colcon on a full ROS 2, or with pip."""

from pathlib import Path

from setuptools import find_packages, setup
from distutils.command.install_data import install_data  # setuptools' distutils, after it

PACKAGE = 'neulens_ros'
HERE = Path(__file__).resolve().parent


def share_files(folder: str, pattern: str = '*') -> list[str]:
    """Files of `folder` (relative, sorted) for data_files; empty when it has none."""
    return sorted(str(p.relative_to(HERE)) for p in (HERE / folder).glob(pattern) if p.is_file())


# Console scripts: node executables (what `ros2 run neulens_ros <name>` starts) and tools.
NODES = {
    'source_node': 'neulens_ros.nodes.entry:source_node',
    'recorder_node': 'neulens_ros.nodes.entry:recorder_node',
    'gate_node': 'neulens_ros.nodes.entry:gate_node',
    'supernet_node': 'neulens_ros.nodes.entry:supernet_node',
    'lifting_node': 'neulens_ros.nodes.entry:lifting_node',
}
TOOLS = {
    'neulens-demo': 'neulens_ros.tools.demo:main',
    'neulens-pipeline': 'neulens_ros.tools.pipeline:main',
    'neulens-gen-data': 'neulens_ros.tools.gen_dataset:main',
    'neulens-param': 'neulens_ros.tools.param:main',
    'neulens-lifecycle': 'neulens_ros.tools.lifecycle:main',
    'neulens-report': 'neulens_ros.tools.report:main',
    'neulens-train': 'neulens_ros.tools.train:main',
    'neulens-eval': 'neulens_ros.tools.eval:main',
    'neulens-profile': 'neulens_ros.tools.profile:main',
    'neulens-bench': 'neulens_ros.tools.bench:main',
    'neulens-top': 'neulens_ros.tools.top:main',
}

# `ros2 run` and launch_ros start <prefix>/lib/neulens_ros/<node>; pip puts console scripts in
# <prefix>/bin. This launcher, written there for each node, runs the console script next to
# it (its first line names the Python that has the package), else the entry module with python3.
LAUNCHER = '''#!/bin/sh
script="$(dirname "$0")/../../bin/{name}"
[ -x "$script" ] && exec "$script" "$@"
exec python3 -m neulens_ros.nodes.entry {name} "$@"
'''


class InstallData(install_data):
    """install_data plus a launcher per node in lib/neulens_ros, unless the console scripts
    are installed there already (colcon: setup.cfg's install_scripts)."""

    def run(self) -> None:
        super().run()
        libexec = Path(self.install_dir, 'lib', PACKAGE)
        scripts = Path(self.get_finalized_command('install').install_scripts)
        if scripts.resolve() == libexec.resolve():
            return
        self.mkpath(str(libexec))
        for name in NODES:
            path = libexec / name
            path.write_text(LAUNCHER.format(name=name))
            path.chmod(0o755)
            self.outfiles.append(str(path))


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={PACKAGE: ['models/weights/*.pt', 'models/weights/*.json',
                           'models/weights/*.png']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', share_files('launch', '*.py')),
        (f'share/{PACKAGE}/config', share_files('config')),
    ],
    install_requires=['setuptools'],
    cmdclass={'install_data': InstallData},
    zip_safe=False,
    maintainer='neulens_ros maintainers',
    maintainer_email='neulens-ros@users.noreply.github.com',
    description='NeuLens tile-level dynamic CNN acceleration for ROS 2 MR perception',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in {**NODES, **TOOLS}.items()],
    },
)
