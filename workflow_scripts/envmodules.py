"""Make `envmodules:` work without a site-wide module set-up.

Snakemake's env-modules deployment prefixes each job with `module load pvw/NAME`. That
needs the `module` shell function in the job's non-interactive bash (BASH_ENV pointing at
the modules init script) and our generated modulefiles on MODULEPATH. Both are exported
from the Snakemake process, so local jobs and `sbatch` jobs (which inherit the submitting
environment) see them. Site settings win: an existing BASH_ENV (e.g. Lmod's) is kept.
"""
import os

MODULE_INIT_SCRIPTS = (
    "/usr/share/modules/init/bash",  # Debian/Ubuntu environment-modules
    "/etc/profile.d/modules.sh",  # RHEL-style installs
    "/usr/share/lmod/lmod/init/bash",  # Lmod
)


def configure_env_modules(workflow_dir: str) -> None:
    modules_dir = os.path.join(workflow_dir, ".modules")
    if os.path.isdir(modules_dir):
        paths = [p for p in os.environ.get("MODULEPATH", "").split(":") if p]
        if modules_dir not in paths:
            os.environ["MODULEPATH"] = ":".join([modules_dir] + paths)
    if "BASH_ENV" not in os.environ:
        for init in MODULE_INIT_SCRIPTS:
            if os.path.exists(init):
                os.environ["BASH_ENV"] = init
                break
