"""The two sides of a plan: spec files (and a committed rendered/ folder) read from the working
tree, from another checkout (`--base-dir`), or from a git commit (`--base`).

A commit is read straight from git objects (`git ls-tree`, `git cat-file --batch`): nothing is
checked out, written or fetched. Files are named as `specc render` names them in the working
tree (`specs/mnist.yaml`), so both sides compile to the same source annotations; problems are
reported where the file really is on its side (`main:specs/mnist.yaml:3:5`, `../old/specs/...`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from compiler.diagnostics import Diagnostic, SpecError
from compiler.discover import MAX_FILE_BYTES, discover, file_too_large, is_spec_name, read_spec

#: Largest rendered file read from a base (a ConfigMap holds at most 1 MiB of data).
MAX_RENDERED_BYTES = 4 << 20
#: Where `specc plan` looks for the merge base when no --base is given, in order.
DEFAULT_BASES = ("origin/main", "main")


class PlanError(Exception):
    """A side cannot be read as asked (not a git repository, unknown ref, no git); nothing to locate."""


@dataclass
class Side:
    """Spec files of one side, named as in the working tree, and what else the plan needs."""

    label: str  # how the plan names this side: "working tree", "main (3f2a1b9c0d1e)", "../old"
    specs: list[tuple[str, bytes]] = field(default_factory=list)
    diags: list[Diagnostic] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # named paths this side does not have
    rendered: dict[str, bytes] | None = None  # "<job folder>/<file>.yaml" -> bytes; None: no rendered/
    rendered_dir: str = "rendered"  # the rendered folder as named in the working tree
    locate: Callable[[str], str] = str  # a file name -> where it is on this side
    #: a name -> the path a render from this side's root writes into source annotations
    tree_path: Callable[[str], str] = lambda name: os.path.normpath(_relative(name))
    #: a spec name -> the `.specc.yaml` defaults that apply to it on this side (compiler/defaults.py)
    defaults: Callable[[str], tuple[str, bytes] | None] = field(default=None, repr=False)  # type: ignore[assignment]
    ref: str | None = None
    commit: str | None = None
    dir: str | None = None
    _names: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if self.defaults is None:  # this file system, each folder's answer remembered (as a render does)
            from compiler.defaults import lookup

            self.defaults = partial(lookup, memo={})

    def add(self, name: str, data: bytes) -> None:
        """A spec file, unless an earlier named path already brought it."""
        if name not in self._names:
            self._names.add(name)
            self.specs.append((name, data))

    def error(self, name: str, message: str) -> None:
        self.diags.append(Diagnostic(self.locate(name), 1, 1, "", message))


# ----------------------------------------------------------------------------- file systems


def _relative(p: str) -> Path:
    """A named path relative to the working directory (as the other side holds it)."""
    path = Path(p)
    return Path(os.path.relpath(path)) if path.is_absolute() else path


def _read_specs(side: Side, root: Path | None, paths: list[str]) -> None:
    for p in paths:
        full = Path(p) if root is None else root / _relative(p)
        if not os.path.lexists(full):
            side.missing.append(p)
            continue
        try:
            files = discover([full])
        except SpecError as exc:
            if not full.is_dir():  # a folder without specs simply has none on this side
                side.diags.extend(exc.diagnostics)
            continue
        for f in files:
            name = str(Path(p) / os.path.relpath(f, full)) if f != str(full) else str(Path(p))
            try:
                side.add(name, read_spec(f))
            except SpecError as exc:
                side.diags.extend(exc.diagnostics)


def working_tree(paths: list[str]) -> Side:
    """The spec files under `paths` in the working tree."""
    side = Side("working tree")
    _read_specs(side, None, paths)
    return side


def checkout(root: str, paths: list[str], rendered: str) -> Side:
    """The spec files under `paths` in another checkout, and its committed rendered/ folder."""
    base = Path(root)
    if not base.is_dir():
        raise PlanError(f"--base-dir {root}: not a folder")
    from compiler.defaults import lookup_under

    side = Side(root, dir=root, rendered_dir=rendered, locate=lambda name: str(base / _relative(name)),
                defaults=partial(lookup_under, base, memo={}))
    _read_specs(side, base, paths)
    folder = base / _relative(rendered)
    if folder.is_dir():
        side.rendered = {}
        for f in sorted(folder.glob("*/*")):
            rel = f.relative_to(folder).as_posix()
            if is_spec_name(rel) and f.is_file():
                try:
                    size = f.stat().st_size
                    if size > MAX_RENDERED_BYTES:
                        side.diags.append(Diagnostic(str(f), 1, 1, "", file_too_large(size, None)))
                        continue
                    side.rendered[rel] = f.read_bytes()
                except OSError as exc:
                    side.diags.append(Diagnostic(str(f), 1, 1, "", f"cannot read file: {exc.strerror or exc}"))
    return side


# ----------------------------------------------------------------------------- git


def _git(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"}
    try:
        return subprocess.run(["git", *args], input=stdin, capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise PlanError("git is not installed: install it, or compare with --base-dir DIR") from None


def _git_ok(*args: str, stdin: bytes | None = None) -> bytes:
    r = _git(*args, stdin=stdin)
    if r.returncode != 0:
        why = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PlanError(f"git {args[0]} failed: {why[-1] if why else f'exit status {r.returncode}'}")
    return r.stdout


def _commit_of(ref: str) -> str | None:
    r = _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return r.stdout.decode().strip() if r.returncode == 0 else None


def _prefix() -> str:
    """The working directory's path in its repository's tree (`sub/`, "" at the top); PlanError
    outside a repository."""
    r = _git("rev-parse", "--show-prefix")
    if r.returncode != 0:
        raise PlanError("not in a git repository: run specc plan inside one, or compare with --base-dir DIR")
    return r.stdout.decode("utf-8", "surrogateescape").strip("\n")


def resolve_base(ref: str | None) -> tuple[str, str]:
    """The commit to compare with and how to name it: `ref` itself, or by default the merge base
    of HEAD with origin/main, else with main (run inside a repository: see _prefix)."""
    if ref is not None:
        sha = _commit_of(ref)
        if sha is None:
            raise PlanError(f"--base {ref}: no such commit, branch or tag")
        return sha, ref
    for candidate in DEFAULT_BASES:
        if _commit_of(candidate) is None:
            continue
        r = _git("merge-base", "HEAD", candidate)
        if r.returncode == 0:
            return r.stdout.decode().strip(), f"merge base with {candidate}"
    raise PlanError(f"no base to compare with: none of {', '.join(DEFAULT_BASES)} shares history with HEAD; "
                    "name one with --base REF (in CI, fetch it first: actions/checkout with fetch-depth: 0)")


def _repo_path(prefix: str, p: str) -> str:
    """A named path as a path in the repository's tree."""
    path = os.path.normpath(os.path.join(prefix, str(_relative(p)))).replace(os.sep, "/")
    if path == ".." or path.startswith("../"):
        raise PlanError(f"{p}: outside the git repository")
    return "" if path == "." else path


def _ls_tree(sha: str, paths: list[str]) -> list[list[tuple[str, str, str, int | None, str]]]:
    """(mode, type, object, size, path) of every file under each of `paths` in the commit (in
    tree order), from one `git ls-tree`."""
    out = _git_ok("ls-tree", "-r", "-l", "-z", "--full-tree", sha, "--", *([] if "" in paths else dict.fromkeys(paths)))
    listings: list[list[tuple[str, str, str, int | None, str]]] = [[] for _ in paths]
    at: dict[str, list[int]] = {}  # a path -> the listings it is (also) named for
    for i, path in enumerate(paths):
        at.setdefault(path, []).append(i)
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind, obj, size = meta.decode().split()
        tree_path = name.decode("utf-8", "surrogateescape")
        item = (mode, kind, obj, int(size) if size.isdigit() else None, tree_path)
        folder = tree_path
        while True:  # the entry itself, each folder above it, and the top ("")
            for i in at.get(folder, ()):
                listings[i].append(item)
            if not folder:
                break
            folder = folder.rpartition("/")[0]
    return listings


def _under(path: str, entry: str) -> str | None:
    """`entry` relative to `path` when it is inside it ("" for the path itself), else None."""
    if not path:
        return entry
    if entry == path:
        return ""
    return entry[len(path) + 1:] if entry.startswith(path + "/") else None


def _cat(sha: str, requests: list[str]) -> list[tuple[str, bytes]]:
    """`git cat-file --batch --follow-symlinks` for object names: (type or problem, content)."""
    if not requests:
        return []
    out = _git_ok("cat-file", "--batch", "--follow-symlinks", stdin="".join(r + "\n" for r in requests).encode("utf-8", "surrogateescape"))
    answers, at = [], 0
    for _ in requests:
        end = out.index(b"\n", at)
        header = out[at:end].decode("utf-8", "replace")
        at = end + 1
        if header.endswith((" missing", " ambiguous")):
            answers.append(("missing", b""))
            continue
        parts = header.split(" ")
        if parts[0] in ("symlink", "dangling", "loop", "notdir"):  # "<problem> <size>\n<target>\n"
            size = int(parts[1])
            answers.append((parts[0], out[at:at + size]))
        else:  # "<object> <type> <size>\n<content>\n"
            size = int(parts[2])
            answers.append((parts[1], out[at:at + size]))
        at += size + 1
    return answers


class _GitDefaults:
    """The defaults lookup of a commit: the nearest `.specc.yaml` above a spec's tree path. The
    files of every folder above the side's specs are fetched with the specs (`folders`, `request`,
    `learn`); any other folder's on first use."""

    def __init__(self, sha: str, prefix: str):
        self.sha, self.prefix = sha, prefix
        self.found: dict[str, tuple[str, bytes] | None] = {}

    @staticmethod
    def _path(folder: str) -> str:
        from compiler.defaults import FILE_NAME

        return f"{folder}/{FILE_NAME}" if folder else FILE_NAME

    def folders(self, names: list[str]) -> list[str]:
        """Each folder not yet known that the lookup of `names` may read, in a `git cat-file`
        request that stays one line (a line break in a name would split it)."""
        out: dict[str, None] = {}
        for name in names:
            folder = os.path.dirname(_repo_path(self.prefix, name))
            while folder not in out and folder not in self.found and "\n" not in folder:
                out[folder] = None
                if not folder:
                    break
                folder = os.path.dirname(folder)
        return list(out)

    def request(self, folder: str) -> str:
        return f"{self.sha}:{self._path(folder)}"

    def learn(self, folder: str, kind: str, data: bytes) -> None:
        """The `git cat-file` answer for a folder's `.specc.yaml`."""
        path = self._path(folder)
        name = os.path.relpath(path, self.prefix) if self.prefix else path  # as the working tree names it
        self.found[folder] = (name, data) if kind == "blob" else None

    def _at(self, folder: str) -> tuple[str, bytes] | None:
        if folder not in self.found:
            (kind, data), = _cat(self.sha, [self.request(folder)])
            self.learn(folder, kind, data)
        return self.found[folder]

    def __call__(self, name: str) -> tuple[str, bytes] | None:
        folder = os.path.dirname(_repo_path(self.prefix, name))
        while True:
            hit = self._at(folder)
            if hit is not None or not folder:
                return hit
            folder = os.path.dirname(folder)


def commit(ref: str | None, paths: list[str], rendered: str) -> Side:
    """The spec files under `paths` and the rendered/ folder in a commit (default: the merge base
    with origin/main, else main), read from git objects: one `git ls-tree` lists them all and one
    `git cat-file` reads the specs, the `.specc.yaml` files above them and the rendered files."""
    prefix = _prefix()
    sha, name = resolve_base(ref)
    short = sha[:12]
    where = ref if ref is not None else short
    defaults = _GitDefaults(sha, prefix)
    side = Side(f"{name} ({short})", ref=ref, commit=sha, rendered_dir=rendered, defaults=defaults)
    side.locate = lambda n: f"{where}:{_repo_path(prefix, n)}"
    side.tree_path = lambda n: _repo_path(prefix, n) or "."

    rps = [_repo_path(prefix, p) for p in paths]
    rendered_rp = _repo_path(prefix, rendered)
    *listings, rendered_listing = _ls_tree(sha, [*rps, rendered_rp])
    wanted: list[tuple[str, str, str, int | None, str]] = []  # (name, mode, object, size, tree path)
    for p, rp, entries in zip(paths, rps, listings):
        if not entries:
            side.missing.append(p)
            continue
        for mode, kind, obj, size, tree_path in entries:
            rel = _under(rp, tree_path)
            if rel is None or kind != "blob" or (rel and not is_spec_name(rel)):
                continue
            wanted.append((str(Path(p) / rel) if rel else str(Path(p)), mode, obj, size, tree_path))
    requests, names = [], []
    for file_name, mode, obj, size, tree_path in wanted:
        if size is not None and size > MAX_FILE_BYTES:
            side.error(file_name, file_too_large(size))
        elif mode == "120000":  # a symbolic link: its target, if it is a file of the same commit
            if "\n" in tree_path:
                side.error(file_name, "a symbolic link whose name holds a line break cannot be followed")
                continue
            requests.append(f"{sha}:{tree_path}")
            names.append(file_name)
        else:
            requests.append(obj)
            names.append(file_name)
    folders = defaults.folders(names)

    files, too_large = [], []  # (object, path in the rendered folder); (path, size)
    for mode, kind, obj, size, tree_path in rendered_listing:
        rel = _under(rendered_rp, tree_path)
        if kind != "blob" or mode == "120000" or not rel or rel.count("/") != 1 or not is_spec_name(rel):
            continue
        if size is not None and size > MAX_RENDERED_BYTES:
            too_large.append((rel, size))
        else:
            files.append((obj, rel))

    answers = _cat(sha, [*requests, *map(defaults.request, folders), *(obj for obj, _ in files)])
    for file_name, (kind, data) in zip(names, answers):
        if kind != "blob":
            side.error(file_name, f"a symbolic link that does not lead to a file in the commit ({kind})")
        elif len(data) > MAX_FILE_BYTES:
            side.error(file_name, file_too_large(len(data)))
        else:
            side.add(file_name, data)
    for folder, (kind, data) in zip(folders, answers[len(names):]):
        defaults.learn(folder, kind, data)
    if rendered_listing:
        for rel, size in too_large:
            side.error(f"{rendered}/{rel}", file_too_large(size, None))
        side.rendered = {rel: data for (_, rel), (_, data) in zip(files, answers[len(names) + len(folders):])}
    return side
