"""A restore never writes outside its target, whatever the archive says: hostile archives
built here (with an index that vouches for them, as a forger would write one) are refused
member by member, and what is harmless in them is still restored."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from lifeboat.errors import UsageError
from lifeboat.sources.files.extract import Restorer, normalise_selection, selected
from lifeboat.sources.files.index import read_index
from lifeboat.sources.files.readback import CheckedArchive
from tests.forged_archives import Member, file, folder, link
from tests.forged_archives import forged as forged_archive


def forged(folder_: Path, members: list[Member]) -> tuple[bytes, Path]:
    """The archive of members, and a file of the index that agrees with it."""
    archive, index_text = forged_archive(members)
    index = Path(tempfile.mkstemp(dir=folder_, prefix="index-")[1])
    index.write_text(index_text, encoding="ascii")
    return archive, index


def restore(folder_: Path, members: list[Member], target: Path) -> Restorer:
    archive, index = forged(folder_, members)
    target.mkdir(exist_ok=True)
    restorer = Restorer(read_index(index), target)
    for start in range(0, len(archive), 1000):
        restorer.write(archive[start : start + 1000])
    restorer.finish()
    return restorer


def tree(root: Path) -> dict[str, bytes | str]:
    """Everything under root: a file's content, a link's target, "dir" for a folder."""
    found: dict[str, bytes | str] = {}
    for folder_, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = Path(folder_, entry)
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = os.readlink(path)
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    place = tmp_path / "outside"
    place.mkdir()
    (place / "sentinel").write_bytes(b"untouched")
    return place


def test_hostile_members_are_refused_and_nothing_is_written_outside(
    tmp_path: Path, outside: Path
) -> None:
    target = tmp_path / "target"
    before = tree(tmp_path)
    restorer = restore(
        tmp_path,
        [
            file("../outside/dotdot"),
            file("ok/../../outside/dotdot2"),
            file(str(outside / "absolute")),
            link("escape", str(outside)),
            file("escape/through-absolute-link"),
            link("up", ".."),
            file("up/outside/through-relative-link"),
            link("hard-dotdot", "../outside/sentinel", tarfile.LNKTYPE),
            link("hard-absolute", str(outside / "sentinel"), tarfile.LNKTYPE),
            link("to-sentinel", str(outside / "sentinel")),
            link("hard-to-symlink", "to-sentinel", tarfile.LNKTYPE),
            link("device", "", tarfile.CHRTYPE),
            link("fifo", "", tarfile.FIFOTYPE),
            file("fine", b"restored"),
        ],
        target,
    )
    refused = "\n".join(restorer.refused.all())
    for name, why in [
        ("../outside/dotdot", "a name with '..'"),
        ("ok/../../outside/dotdot2", "a name with '..'"),
        (str(outside / "absolute"), "an absolute name"),
        ("escape/through-absolute-link", "written through the symlink 'escape'"),
        ("up/outside/through-relative-link", "written through the symlink 'up'"),
        ("hard-dotdot", "a name with '..'"),
        ("hard-absolute", "an absolute name"),
        ("hard-to-symlink", "which is not a file"),
        ("device", "a type '3' member"),
        ("fifo", "a type '6' member"),
    ]:
        assert f"{name!r}: refused, " in refused and why in refused, (name, refused)
    assert len(restorer.refused.all()) == 10
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(("target", "index-"))} == before
    # links are restored as links (never followed); the harmless file is restored
    assert tree(target) == {
        "escape": str(outside),
        "up": "..",
        "to-sentinel": str(outside / "sentinel"),
        "fine": b"restored",
    }


def test_a_symlink_replaced_by_a_folder_member_is_never_followed(
    tmp_path: Path, outside: Path
) -> None:
    target = tmp_path / "target"
    restorer = restore(
        tmp_path,
        [link("d", str(outside)), folder("d"), file("d/inside")],
        target,
    )
    assert restorer.refused.all() == []
    assert (target / "d").is_dir() and not (target / "d").is_symlink()
    assert (target / "d" / "inside").read_bytes() == b"planted"
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]


def test_a_symlink_already_in_the_target_is_replaced_not_followed(
    tmp_path: Path, outside: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "victim").symlink_to(outside / "sentinel")
    restorer = restore(tmp_path, [file("victim", b"new")], target)
    assert restorer.refused.all() == []
    assert not (target / "victim").is_symlink()
    assert (target / "victim").read_bytes() == b"new"
    assert (outside / "sentinel").read_bytes() == b"untouched"


def test_content_that_differs_from_the_index_is_reported(tmp_path: Path) -> None:
    archive, index = forged(tmp_path, [file("a", b"original")])
    tampered = archive.replace(b"original", b"tampered")
    checker = CheckedArchive(read_index(index))
    checker.write(tampered)
    checker.finish()
    assert checker.problems.all() == ["a: content differs from the index (sha256)"]


def test_an_archive_out_of_step_with_its_index_is_reported_once(tmp_path: Path) -> None:
    _, index = forged(tmp_path, [file("a"), file("b")])
    other, _ = forged(tmp_path, [file("x"), file("y")])
    checker = CheckedArchive(read_index(index))
    checker.write(other)
    checker.finish()
    assert checker.problems.all() == [
        "x: the archive and the index disagree from here on (the index names a)"
    ]


def test_a_truncated_archive_is_reported(tmp_path: Path) -> None:
    archive, index = forged(tmp_path, [file("a", b"x" * 5000)])
    checker = CheckedArchive(read_index(index))
    checker.write(archive[:2048])
    checker.finish()
    assert "the archive ends before its end marker: it is truncated" in checker.problems.all()


def test_paths_are_named_with_or_without_the_leading_slash() -> None:
    assert normalise_selection(["/srv/app/uploads/", "srv/app//x"]) == (
        "srv/app/uploads",
        "srv/app/x",
    )
    for bad in ("../etc", "/", ""):
        with pytest.raises(UsageError):
            normalise_selection([bad])
    assert selected("srv/app/uploads/2026/03/a.jpg", ("srv/app/uploads/2026/03",))
    assert selected("srv/app/uploads/2026/03", ("srv/app/uploads/2026/03",))
    assert not selected("srv/app/uploads/2026/030", ("srv/app/uploads/2026/03",))


def test_a_backup_of_the_root_restores_into_the_target(tmp_path: Path) -> None:
    """Backing up "/" makes a "./" member: the target itself, not a refused name."""
    target = tmp_path / "target"
    restorer = restore(tmp_path, [folder("./"), folder("etc"), file("etc/hosts", b"h")], target)
    assert restorer.refused.all() == [] and restorer.problems.all() == []
    assert (target / "etc" / "hosts").read_bytes() == b"h"
    assert restorer.restored == 3


def test_a_path_restore_reports_a_hard_link_to_a_name_it_leaves_out(tmp_path: Path) -> None:
    archive, index = forged(
        tmp_path,
        [folder("a"), file("a/first", b"shared"), folder("b"), link("b/second", "a/first", b"1")],
    )
    target = tmp_path / "target"
    target.mkdir()
    restorer = Restorer(read_index(index), target, selection=("b",))
    restorer.write(archive)
    restorer.finish()
    assert restorer.refused.all() == [
        "'b/second': refused, a hard link to 'a/first', which --path leaves out"
    ]
    assert tree(target) == {"b": "dir"}
