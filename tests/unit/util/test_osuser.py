"""util/osuser.py: who the server programs run as, what that user can reach, and handing a
tree over to it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.util.osuser import NoServerUser, OsUser, is_root, run_as, server_user

# a user that owns nothing here and is in none of the groups of the test's folders
STRANGER = OsUser("stranger", uid=64999, gid=64999, groups=(64999,), home="/")

needs_root = pytest.mark.skipif(not is_root(), reason="handing files over needs root")


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder right under the system's temporary folder (others may enter /tmp, not
    pytest's own 0700 base)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)
        yield folder


def test_a_stranger_reaches_only_through_folders_open_to_others(open_tmp: Path) -> None:
    opened = open_tmp / "open" / "inner"
    opened.mkdir(parents=True)
    closed = open_tmp / "closed" / "inner"
    closed.mkdir(parents=True)
    (open_tmp / "open").chmod(0o755)
    opened.chmod(0o755)
    (open_tmp / "closed").chmod(0o700)
    assert STRANGER.can_reach(opened)
    assert not STRANGER.can_reach(closed)
    assert STRANGER.can_reach(open_tmp / "not yet created")  # what is missing is skipped


def test_the_owner_and_the_group_reach_by_their_own_bits(open_tmp: Path) -> None:
    mine = open_tmp / "mine"
    mine.mkdir(mode=0o700)
    st = mine.stat()
    owner = OsUser("owner", st.st_uid, 64999, (64999,), "/")
    member = OsUser("member", 64999, st.st_gid, (st.st_gid,), "/")
    assert owner.can_reach(mine)
    assert not member.can_reach(mine)
    mine.chmod(0o710)
    assert member.can_reach(mine) and not STRANGER.can_reach(mine)


def test_without_another_user_a_program_runs_as_ourselves_in_the_given_environment() -> None:
    done = run_as(None, ["sh", "-c", "id -u; echo $LIFEBOAT_TEST"], env={"LIFEBOAT_TEST": "x"})
    assert done.returncode == 0
    assert done.stdout.split() == [str(os.geteuid()), "x"]


def test_who_runs_the_server() -> None:
    if not is_root():
        assert server_user() is None
        assert server_user("no-such-user-lifeboat") is None
        return
    user = server_user()
    assert user is not None and user.name == "postgres" and user.uid != 0
    with pytest.raises(NoServerUser, match="no 'no-such-user-lifeboat' OS user"):
        server_user("no-such-user-lifeboat")


@needs_root
def test_a_tree_is_handed_over_links_themselves_not_their_targets(tmp_path: Path) -> None:
    user = server_user()
    assert user is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "data"
    (root / "base").mkdir(parents=True)
    (root / "base" / "1").write_text("x")
    (root / "link").symlink_to(outside)
    user.chown_tree(root)
    for path in (root, root / "base", root / "base" / "1"):
        assert (path.stat().st_uid, path.stat().st_gid) == user.owner
    assert (root / "link").lstat().st_uid == user.uid
    assert outside.stat().st_uid == os.geteuid()


@needs_root
def test_a_program_run_as_the_server_user_gets_its_identity_and_home(tmp_path: Path) -> None:
    user = server_user()
    assert user is not None
    tmp_path.chmod(0o755)
    done = run_as(user, ["sh", "-c", "id -u; echo $HOME $USER"], env={}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(user.uid), user.home, user.name]
