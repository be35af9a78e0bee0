"""Results at a git revision or in a DVC experiment, read from git without checking it out.

`sswp report` writes results/ as git-tracked files, so every commit and every DVC experiment
(a commit under refs/exps/) carries its own results: `sswp compare` and `sswp sweep` read
them from there when they are given a name instead of a folder.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sswp.errors import SswpError

# refs/exps/<first 2 hex digits of the baseline>/<the rest>/<experiment name>
EXPERIMENT_REF = re.compile(r"^refs/exps/([0-9a-f]{2})/([0-9a-f]{38})/(?P<name>[^/]+)$")


def git(*args: str, repo: Path = Path(".")) -> str:
    """A git command's output; SswpError with git's own complaint if it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    except FileNotFoundError as exc:
        raise SswpError("git is not installed; install it to read results at a revision") from exc
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or "").strip().splitlines()
        raise SswpError(f"git {args[0]}: {reason[0] if reason else exc}") from exc
    return done.stdout


def experiments(repo: Path = Path(".")) -> dict[str, list[str]]:
    """{name: [ref, ...]} of the repository's DVC experiments, every baseline's."""
    found: dict[str, list[str]] = {}
    for ref in git("for-each-ref", "--format=%(refname)", "refs/exps", repo=repo).split():
        match = EXPERIMENT_REF.match(ref)
        if match:
            found.setdefault(match["name"], []).append(ref)
    return found


def baseline(ref: str) -> str:
    """The commit an experiment ref was run from."""
    match = EXPERIMENT_REF.match(ref)
    assert match, ref
    return match[1] + match[2]


def resolve(rev: str, repo: Path = Path(".")) -> str:
    """The commit of `rev`: a DVC experiment's name (the one run from HEAD if several
    baselines have it), or anything git names a commit by."""
    refs = experiments(repo).get(rev, [])
    if len(refs) > 1:
        head = git("rev-parse", "HEAD", repo=repo).strip()
        refs = [ref for ref in refs if baseline(ref) == head] or refs
        if len(refs) > 1:
            raise SswpError(
                f"experiment {rev!r} exists on {len(refs)} commits; name one of {', '.join(refs)}"
            )
    target = refs[0] if refs else rev
    try:
        return git("rev-parse", "--verify", "--quiet", f"{target}^{{commit}}", repo=repo).strip()
    except SswpError as exc:
        raise SswpError(
            f"{rev!r} is neither a folder, a git revision nor a DVC experiment "
            "(`dvc exp list --all-commits` lists them)"
        ) from exc


def read_at(commit: str, path: str, repo: Path = Path(".")) -> str:
    """A file's text at a commit; SswpError naming it if the commit lacks it."""
    try:
        return git("show", f"{commit}:{path}", repo=repo)
    except SswpError as exc:
        raise SswpError(
            f"{path} not found at {commit[:12]}; that revision has no report (run `sswp report`)"
        ) from exc
