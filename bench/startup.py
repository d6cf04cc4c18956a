"""Start-up of the command: `newsletter --help` and `newsletter render` against `python -c "import click"`.

    python bench/startup.py                    # 15 rounds, interleaved; medians and ratios
    python bench/startup.py --against ../old   # the same commands from another checkout, in the same rounds

Every command runs as a new process with its bytecode already compiled (as installed), the three (or
six) interleaved round after round so a busy machine slows them alike; each reports its median wall
time. Target: `--help` <= 2x the bare `import click`, since --help needs nothing else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENTRY = "import sys; sys.argv[0] = 'newsletter'; from newsletter.cli import main; main()"
HEAVY = ("sqlalchemy", "alembic", "starlette", "uvicorn", "apscheduler", "playwright", "aiosmtplib", "premailer")
PROBE = (
    "import sys; sys.argv = ['newsletter', *sys.argv[1:]]\n"
    "try:\n    from newsletter.cli import main; main()\nexcept SystemExit:\n    pass\n"
    f"print('HEAVY', ' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return elapsed


def heavy_imports(tree: Path, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    found = [line for line in probe.stderr.splitlines() if line.startswith("HEAVY")]
    return (found[-1][6:] or "none") if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--against", metavar="DIR", type=Path, help="another checkout, measured in the same rounds")
    args = parser.parse_args()
    trees = {"this checkout": REPO} | ({f"{args.against}": args.against.resolve()} if args.against else {})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # compiled once, like an installed package
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        folders = {}  # another checkout gets its own files: this checkout's theme may use fields it lacks
        for i, (name, tree) in enumerate(trees.items()):
            folders[name] = root / f"letter-{i}"
            if name == "this checkout":
                subprocess.run(
                    [sys.executable, "-c", ENTRY, "init", str(folders[name])],
                    env={**env, "PYTHONPATH": str(tree)},
                    check=True,
                    capture_output=True,
                )
            else:  # a checkout is itself a newsletter folder
                folders[name].mkdir()
                shutil.copyfile(tree / "newsletter.toml", folders[name] / "newsletter.toml")
                shutil.copytree(tree / "templates", folders[name] / "templates")
                shutil.copytree(tree / "issues", folders[name] / "issues")
        folder = folders["this checkout"]
        commands = {"import click": ([sys.executable, "-c", "import click"], env, folder)}
        for name, tree in trees.items():
            tree_env = {**env, "PYTHONPATH": str(tree)}
            commands[f"--help ({name})"] = ([sys.executable, "-c", ENTRY, "--help"], tree_env, folders[name])
            commands[f"render ({name})"] = ([sys.executable, "-c", ENTRY, "render", "latest"], tree_env, folders[name])
        for argv, command_env, cwd in commands.values():  # warm-up: bytecode compiled, files in the page cache
            run(argv, cwd, command_env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(max(1, args.repeat)):
            for name, (argv, command_env, cwd) in commands.items():
                times[name].append(run(argv, cwd, command_env))
        medians = {name: statistics.median(values) for name, values in times.items()}
        base = medians["import click"]
        print(f"{args.repeat} rounds, medians of new processes (bytecode compiled):")
        for name, value in medians.items():
            ratio = "" if name == "import click" else f"  {value / base:.2f}x import click"
            print(f"  {name:<32} {value * 1000:7.0f} ms{ratio}")
        for name, tree in trees.items():
            print(f"  heavy modules for --help ({name}): {heavy_imports(tree, ['--help'], folders[name], env)}")
            rendering = heavy_imports(tree, ["render", "latest"], folders[name], env)
            print(f"  heavy modules for render ({name}): {rendering}")
        help_ratio = medians["--help (this checkout)"] / base
        print(f"--help / import click = {help_ratio:.2f}   target <= 2")
        if args.against:
            other = f"{args.against}"
            for what in ("--help", "render"):
                after, before = medians[f"{what} (this checkout)"], medians[f"{what} ({other})"]
                shown = f"{after * 1e3:.0f} / {before * 1e3:.0f} ms"
                print(f"{what}: this checkout / {other} = {after / before:.2f} ({shown})")


if __name__ == "__main__":
    main()
