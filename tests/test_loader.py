"""Load stage and diagnostics: located errors for every invalid-input fixture, positions,
resource bounds (alias bombs, size, depth), and a fuzz check that nothing but SpecError escapes.

"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import loader
from compiler.diagnostics import Diagnostic, ExitCode, SpecError, did_you_mean, format_json, format_text
from compiler.discover import pathname
from compiler.loader import Loaded, discover, load_file, load_text

FIXTURES = Path(__file__).parent / "fixtures" / "invalid"
BACKENDS = ["libyaml", "ruamel"] if loader._libyaml() is not None else ["ruamel"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Run the test once per YAML parser backend; both must report the same positions."""
    monkeypatch.setattr(loader, "_BACKEND", request.param)
    return request.param


def errors_of(path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as exc:
        load_file(path)
    return exc.value.diagnostics


# fixture file -> [(line, col, message substring)], in sorted order
EXPECTED = {
    "empty.yaml": [(1, 1, "empty spec: the file has no YAML document")],
    "binary.yaml": [(2, 7, "binary data: NUL byte")],
    "not-utf8.yaml": [(3, 12, "not UTF-8: invalid byte 0xe9 at byte offset 42")],
    "control-char.yaml": [(3, 13, "character U+0007 is not allowed in YAML")],
    "list-document.yaml": [(1, 1, "a spec must be a mapping at the top level, found a list")],
    "scalar-document.yaml": [(2, 1, "a spec must be a mapping at the top level, found a string")],
    "null-document.yaml": [(3, 1, "empty spec: the document is null")],
    "two-documents.yaml": [(3, 1, "one spec per file; found a second document here")],
    "duplicate-key.yaml": [(7, 7, "duplicate key 'count' (first defined at line 5)")],
    "tab-indent.yaml": [(4, 1, "tab character in indentation: YAML indents with spaces only")],
    "alias-bomb.yaml": [(6, 8, f"document too large: more than {loader.MAX_NODES} nodes after expanding aliases (alias '*d'")],
    "deep-nesting.yaml": [(65, 129, f"nesting deeper than {loader.MAX_DEPTH} levels")],
    "python-tag.yaml": [(3, 10, "unsupported YAML tag !!python/object/apply:os.system")],
    "custom-tag.yaml": [(3, 10, "unsupported YAML tag !Ref")],
    "timestamp-tag.yaml": [(3, 12, "unsupported YAML tag !!timestamp")],
    "bad-int-tag.yaml": [(5, 14, "cannot read 'two' as !!int")],
    "syntax-error.yaml": [(4, 8, "invalid YAML: ")],
    "bad-indent.yaml": [(4, 13, "invalid YAML: mapping values are not allowed")],
    "non-string-key.yaml": [(4, 5, "mapping keys must be strings, found an integer 1")],
    "complex-key.yaml": [(2, 3, "mapping keys must be strings, found a list")],
    "undefined-alias.yaml": [(3, 10, "undefined alias '*image'")],
    "recursive-alias.yaml": [(3, 9, "recursive alias '*s'")],
    "merge-key.yaml": [(4, 5, "merge keys ('<<') are not supported")],
    "several-problems.yaml": [
        (2, 1, "duplicate key 'apiVersion' (first defined at line 1)"),
        (4, 3, "mapping keys must be strings, found an integer 1"),
        (5, 10, "unsupported YAML tag !!binary"),
    ],
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_fixture_is_located(name, backend):
    diags = errors_of(FIXTURES / name)
    got = [(d.line, d.col, d.message) for d in diags]
    assert len(got) == len(EXPECTED[name]), got
    for (line, col, msg), (gl, gc, gm) in zip(EXPECTED[name], got):
        assert (gl, gc) == (line, col), (name, got)
        assert msg in gm, (name, gm)
    for d in diags:
        assert d.path == str(FIXTURES / name) and d.field == "" and d.severity == "error"
        assert str(d).startswith(f"{FIXTURES / name}:{d.line}:{d.col}: ")


SPEC = """\
# leading comment
apiVersion: specc/v1
kind: TrainingJob
metadata:
  name: recommender
spec:
  replicas:
    Chief: {count: 1}
    Worker:
      count: 2
  volumes:
    - name: tfevent-volume
      mountPath: /train
    - {name: data, mountPath: "/data"}
  trainer:
    name: recommender
    epochs: 5
    learning_rate: 1.0e-3
"""


def test_positions_of_keys_values_and_list_items(backend):
    doc = load_text(SPEC, "job.yaml")
    assert isinstance(doc, Loaded) and doc.path == "job.yaml" and doc.text == SPEC
    assert doc.data["spec"]["replicas"] == {"Chief": {"count": 1}, "Worker": {"count": 2}}
    assert doc.data["spec"]["trainer"]["learning_rate"] == 0.001
    assert doc.pos(()) == (2, 1)  # the root mapping starts at its first key
    assert doc.pos(("kind",)) == (3, 7)
    assert doc.pos(("kind",), key=True) == (3, 1)
    assert doc.pos(("spec", "replicas", "Worker", "count")) == (10, 14)
    assert doc.pos(("spec", "replicas", "Worker", "count"), key=True) == (10, 7)
    assert doc.pos(("spec", "replicas", "Chief", "count")) == (8, 20)
    assert doc.pos(("spec", "volumes", 0)) == (12, 7)
    assert doc.pos(("spec", "volumes", 0, "mountPath")) == (13, 18)
    assert doc.pos(("spec", "volumes", 1, "mountPath")) == (14, 31)
    assert doc.pos(("spec", "volumes", -1)) == (14, 7)
    assert doc.pos(("spec", "volumes", 1), key=True) == (14, 7)  # list items have no key


def test_positions_fall_back_to_nearest_ancestor(backend):
    doc = load_text(SPEC, "job.yaml")
    # missing required field -> the key of the mapping that lacks it
    assert doc.pos(("spec", "replicas", "Worker", "image")) == (9, 5)
    assert doc.pos(("spec", "storage")) == (6, 1)
    assert doc.pos(("metadata", "namespace"), key=True) == (4, 1)
    assert doc.pos(("nope",)) == (2, 1)  # missing at the top: the root
    assert doc.pos(("spec", "volumes", 7, "name")) == (11, 3)  # index out of range
    # pydantic union tags / '[key]' markers not in the data are skipped
    assert doc.pos(("spec", "trainer", "recommender", "epochs")) == (17, 13)
    assert doc.pos(("metadata", "name", "[key]")) == (5, 3)


def test_aliases_are_copied_and_positioned_at_use(backend):
    doc = load_text("base: &b {x: [1, 2]}\nspec:\n  a: *b\n  b: *b\n", "a.yaml")
    spec = doc.data["spec"]
    assert spec["a"] == spec["b"] == {"x": [1, 2]}
    assert spec["a"] is not spec["b"] and spec["a"]["x"] is not doc.data["base"]["x"]
    assert doc.pos(("spec", "a")) == (3, 6)
    assert doc.pos(("spec", "a", "x", 1)) == (1, 18)  # inside the alias: the anchored text


def test_yaml_12_core_scalars(backend):
    text = (
        "a: 0o17\nb: 0x1F\nc: .inf\nd: -.Inf\ne: .nan\nf: yes\ng: 2024-01-01\nh: 1e3\ni: 1_000\n"
        "j: '12'\nk: ~\nl:\nm: 012\nn: off\no: !!str 5\np: !!float 3\nq: ! 7\nr: TRUE\ns: +12\nt: -.5\n"
    )
    d = load_text(text, "s.yaml").data
    assert d == {**d, "a": 15, "b": 31, "c": math.inf, "d": -math.inf, "f": "yes", "g": "2024-01-01",
                 "h": 1000.0, "i": "1_000", "j": "12", "k": None, "l": None, "m": 12, "n": "off",
                 "o": "5", "p": 3.0, "q": "7", "r": True, "s": 12, "t": -0.5}
    assert math.isnan(d["e"])
    assert type(d["p"]) is float and type(d["m"]) is int and type(d["r"]) is bool


def test_huge_integer_stays_a_string(backend):
    digits = "9" * 5000  # int() refuses this many decimal digits
    assert load_text(f"a: {digits}\nb: 0x{'f' * 5000}\n", "n.yaml").data["a"] == digits


def test_bom_and_crlf_are_fine(tmp_path, backend):
    p = tmp_path / "bom.yaml"
    p.write_bytes(b"\xef\xbb\xbfapiVersion: specc/v1\r\nkind: TrainingJob\r\n")
    doc = load_file(p)
    assert doc.data == {"apiVersion": "specc/v1", "kind": "TrainingJob"}
    assert doc.pos(("kind",)) == (2, 7)


def test_alias_bomb_rejected_fast_with_bounded_memory(backend):
    text = (FIXTURES / "alias-bomb.yaml").read_text()
    t0 = time.perf_counter()
    with pytest.raises(SpecError):
        load_text(text, "bomb.yaml")
    assert time.perf_counter() - t0 < 0.5
    tracemalloc.start()
    try:
        with pytest.raises(SpecError):
            load_text(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_wide_alias_fanout_counts_every_use(backend):
    # 200 aliases of a 100-node list: 20,000 nodes once expanded, though the file is tiny
    text = "a: &a [" + ", ".join(["x"] * 99) + "]\nb: [" + ", ".join(["*a"] * 200) + "]\n"
    with pytest.raises(SpecError, match="more than 10000 nodes"):
        load_text(text, "fan.yaml")


def test_too_many_plain_nodes(backend):
    text = "a: [" + ", ".join(["1"] * (loader.MAX_NODES + 5)) + "]\n"
    with pytest.raises(SpecError, match="more than 10000 nodes"):
        load_text(text, "wide.yaml")


def test_alias_depth_counts_toward_nesting(backend):
    inner = "[" * 40 + "]" * 40
    text = f"a: &a {inner}\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(SpecError, match="through alias"):
        load_text(text, "deep.yaml")


def test_big_file_rejected_before_parsing(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: " + b"x" * (2 << 20) + b"\n")
    t0 = time.perf_counter()
    (d,) = errors_of(p)
    assert time.perf_counter() - t0 < 0.5
    assert (d.line, d.col) == (1, 1) and "file too large" in d.message and "1 MiB" in d.message
    with pytest.raises(SpecError, match="file too large"):
        load_text("a: " + "y" * (2 << 20), "big.yaml")


def test_long_scalar_rejected(backend):
    text = "apiVersion: v\nspec:\n  image: " + "x" * (loader.MAX_SCALAR_CHARS + 1) + "\n"
    with pytest.raises(SpecError) as exc:
        load_text(text, "long.yaml")
    (d,) = exc.value.diagnostics
    assert (d.line, d.col) == (3, 10) and "scalar too long" in d.message


def test_file_errors(tmp_path):
    (d,) = errors_of(tmp_path / "missing.yaml")
    assert str(d) == f"{tmp_path / 'missing.yaml'}:1:1: file not found"
    (d,) = errors_of(tmp_path)
    assert "is a directory" in d.message


def test_discover(tmp_path):
    (tmp_path / "b.yaml").write_text("a: 1\n")
    (tmp_path / "a.yml").write_text("a: 1\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("a: 1\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.yaml").write_text("a: 1\n")
    (tmp_path / "empty").mkdir()
    files = discover([tmp_path, tmp_path / "b.yaml"])
    assert files == [str(tmp_path / "a.yml"), str(tmp_path / "b.yaml"), str(tmp_path / "sub" / "c.yaml")]
    with pytest.raises(SpecError) as exc:
        discover([tmp_path / "empty", tmp_path / "gone.yaml"])
    assert [d.message for d in exc.value.diagnostics] == [
        f"no .yaml/.yml specs in {tmp_path / 'empty'}", "file not found"]


def test_diagnostic_format_and_sorting():
    a = Diagnostic("b.yaml", 3, 1, "spec.replicas.Worker.count", "must be >= 1")
    b = Diagnostic("a.yaml", 9, 2, "", "duplicate key 'x'")
    c = Diagnostic("b.yaml", 1, 5, "kind", "unknown kind", rule="kind")
    assert str(a) == "b.yaml:3:1: spec.replicas.Worker.count: must be >= 1"
    assert str(b) == "a.yaml:9:2: duplicate key 'x'"
    err = SpecError([a, b, c, a])
    assert err.diagnostics == [b, c, a]
    assert str(err) == format_text([b, c, a])
    doc = json.loads(format_json(err.diagnostics))
    assert doc["errors"] == 3 and doc["diagnostics"][2] == {
        "path": "b.yaml", "line": 3, "col": 1, "field": "spec.replicas.Worker.count",
        "message": "must be >= 1", "severity": "error", "rule": None}
    assert json.loads(format_json([Diagnostic("x", 1, 1, "", "w", severity="warning")]))["errors"] == 0
    assert (ExitCode.OK, ExitCode.DIFF, ExitCode.INVALID) == (0, 1, 2)


def test_did_you_mean():
    fields = ["replicas", "trainer", "image", "volumes", "runPolicy"]
    assert did_you_mean("replica", fields) == "did you mean 'replicas'?"
    assert did_you_mean("Replicas", fields) == "did you mean 'replicas'?"
    assert did_you_mean("runpolicy", fields) == "did you mean 'runPolicy'?"
    assert did_you_mean("trainr", fields) == "did you mean 'trainer'?"
    assert did_you_mean("zzzz", fields) is None
    assert did_you_mean("image", fields) is None  # already right
    assert did_you_mean("x", []) is None


TOKENS = [*"ab1.:-?[]{},&*!|>'\"#%@` \t\n\x00é~", "\r\n", "  ", "    ", "<<", "!!", "---", "...", "&a", "*a", "%YAML 1.2\n", "!!python/object ", "0x1", ".inf", "key: "]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.one_of(YAMLISH, st.text(max_size=60)))
def test_any_text_loads_or_raises_spec_error(text, backend):
    try:
        doc = load_text(text, "fuzz.yaml")
    except SpecError as e:
        assert e.diagnostics and all(d.line >= 1 and d.col >= 1 for d in e.diagnostics)
    else:
        assert type(doc.data) is dict
        for k in doc.data:
            assert type(k) is str and len(doc.pos((k,))) == 2


def test_reported_key_is_not_reported_twice(backend):
    with pytest.raises(SpecError) as exc:
        load_text("a: 1\n!!python/name:os.system : x\n", "k.yaml")
    assert [(d.line, d.col, d.message.split(" (")[0]) for d in exc.value.diagnostics] == [
        (2, 1, "unsupported YAML tag !!python/name:os.system")]


def test_ruamel_backend_leaves_ruamel_yaml_importable():
    """The ruamel backend imports only ruamel's parser modules; `import ruamel.yaml` still works."""
    code = (
        "from compiler import loader\n"
        "loader._BACKEND = 'ruamel'\n"
        "assert loader.load_text('a: [1]', 'x').data == {'a': [1]}\n"
        "import io\nfrom ruamel.yaml import YAML\n"
        "y = YAML(); d = y.load('b: 2\\n'); y.dump(d, io.StringIO())\n"
        "assert loader.load_text('c: 3', 'x').data == {'c': 3}\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1], timeout=60)


@given(st.lists(st.sampled_from(["", ".", "..", "a", "b.yaml", " c", "d."]), max_size=6),
       st.sampled_from(["", "/", "//", "///", "./"]))
def test_pathname_names_paths_as_pathlib_does(parts, lead):
    text = lead + "/".join(parts)
    if text:
        assert pathname(text) == str(Path(text))


def test_discover_skips_links_to_folders_and_hidden_files(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.yaml").write_text("a: 1\n")
    (tmp_path / "linked.yaml").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / ".b.yaml").write_text("a: 1\n")
    assert discover([tmp_path]) == [str(tmp_path / "real" / "a.yaml")]
    assert discover([f"{tmp_path}/./real//"]) == [str(tmp_path / "real" / "a.yaml")]


def test_discover_reports_what_is_not_a_spec_file(tmp_path):
    """Folder entries named like specs: a link to a file is one, a real folder named x.yaml is
    searched, and broken links, FIFOs and unsafe names are reported, each as its own problem."""
    (tmp_path / "specs" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "specs" / "deep" / "er" / "a.yaml").write_text("a: 1\n")
    (tmp_path / "specs" / "folder.yaml").mkdir()
    (tmp_path / "specs" / "folder.yaml" / "b.yml").write_text("a: 1\n")
    (tmp_path / "specs" / "alias.yaml").symlink_to(tmp_path / "specs" / "deep" / "er" / "a.yaml")
    (tmp_path / "specs" / "broken.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "specs" / ".hidden.yaml").symlink_to(tmp_path / "nowhere.yaml")  # hidden: not looked at
    (tmp_path / "specs" / "notes.txt").symlink_to(tmp_path / "nowhere.yaml")  # not a spec name: not looked at
    os.mkfifo(tmp_path / "specs" / "pipe.yaml")
    (tmp_path / "specs" / "tab\tname.yaml").write_text("a: 1\n")
    with pytest.raises(SpecError) as exc:
        discover([tmp_path / "specs"])
    assert [(d.path[len(str(tmp_path)) + 1:], d.message) for d in exc.value.diagnostics] == [
        ("specs/broken.yaml", "a broken symbolic link, not a spec file: remove it or rename it without .yaml/.yml"),
        ("specs/pipe.yaml", "a named pipe (FIFO), not a spec file: remove it or rename it without .yaml/.yml"),
        ("specs/tab\tname.yaml", "spec file names may hold letters, digits, space and ._-+@=,~/ only; character "
                                 f"{len(str(tmp_path)) + 11} of the path is U+0009: rename the file or folder"),
    ]
    (tmp_path / "specs" / "broken.yaml").unlink()
    (tmp_path / "specs" / "pipe.yaml").unlink()
    (tmp_path / "specs" / "tab\tname.yaml").unlink()
    assert discover([tmp_path / "specs", f"{tmp_path}/specs/./alias.yaml"]) == [
        str(tmp_path / "specs" / p) for p in ("alias.yaml", "deep/er/a.yaml", "folder.yaml/b.yml")]
