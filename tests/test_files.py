"""capsvc._files: names checked, files reached from a directory's descriptor without links,
modes, truncation, the checkpoint that cuts a failed file back, and command-line paths."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _helpers import descriptors_of

from capsvc._bpf import pack_program
from capsvc._errors import PathOutsideError
from capsvc._files import DIR_MODE, FILE_MODE, Checkpoint, Directory, open_named, split_relative
from capsvc.sources.afpacket._socket import SOCK_FPROG


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def fl(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETFL)


def test_modes_are_private() -> None:
    assert (FILE_MODE, DIR_MODE) == (0o600, 0o700)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a.pcap", ["a.pcap"]),
        ("day1/a.pcap", ["day1", "a.pcap"]),
        ("./x//y/./z", ["x", "y", "z"]),
        ("..a/b..", ["..a", "b.."]),
    ],
)
def test_split_relative_keeps_the_components(name: str, parts: list[str]) -> None:
    assert split_relative(name) == parts
    assert split_relative(Path(name)) == parts


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "'': is empty"),
        ("a\0b", "'a\\x00b': holds a NUL byte"),
        ("/etc/passwd", "'/etc/passwd': is absolute (give a name inside the directory)"),
        ("logs/", "'logs/': names a directory, not a file"),
        ("../x", "'../x': leaves the directory (..)"),
        ("a/../../x", "'a/../../x': leaves the directory (..)"),
        (".", "'.': names no file"),
        ("./.", "'./.': names no file"),
    ],
)
def test_split_relative_refuses(name: str, problem: str) -> None:
    with pytest.raises(PathOutsideError) as info:
        split_relative(name, where="/srv/out")
    assert str(info.value) == f"/srv/out: {problem}"
    with pytest.raises(PathOutsideError) as info:
        split_relative(name)
    assert str(info.value) == f"path: {problem}"


def test_a_directory_is_made_private_or_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Directory(tmp_path / "missing")
    made = Directory(tmp_path / "a" / "b", create=True)
    assert made.path == str(tmp_path / "a" / "b")
    assert mode(tmp_path / "a" / "b") == 0o700  # the directory itself; parents as makedirs
    made.close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(PathOutsideError) as info:
        Directory(tmp_path / "file")
    assert str(info.value) == f"{tmp_path / 'file'}: is not a directory"
    relative = Directory(os.path.relpath(tmp_path))
    assert relative.path == str(tmp_path)  # made absolute
    relative.close()


def test_lifetime_close_dup_and_context(tmp_path: Path) -> None:
    d = Directory(tmp_path, file_mode=0o640, group=os.getgid())
    twin = d.dup()
    assert (twin.path, twin.file_mode, twin.group) == (d.path, 0o640, os.getgid())
    assert twin.fd != d.fd and os.path.samestat(os.fstat(twin.fd), os.fstat(d.fd))
    d.close()
    d.close()  # idempotent
    with pytest.raises(ValueError, match=f"^directory {tmp_path} is closed$"):
        _ = d.fd
    os.close(twin.create("still.pcap"))  # the twin lives on
    with twin as same:
        assert same is twin
    with pytest.raises(ValueError, match="closed"):
        twin.create("x")
    assert (tmp_path / "still.pcap").exists()


def test_create_makes_private_files_and_directories(tmp_path: Path) -> None:
    with Directory(tmp_path) as d:
        fd = d.create("day1/hour2/a.pcap")
        try:
            assert fl(fd) & os.O_ACCMODE == os.O_WRONLY
            assert not fl(fd) & (os.O_NONBLOCK | os.O_APPEND)
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            os.write(fd, b"data")
        finally:
            os.close(fd)
    assert (tmp_path / "day1/hour2/a.pcap").read_bytes() == b"data"
    assert mode(tmp_path / "day1") == mode(tmp_path / "day1/hour2") == 0o700
    assert mode(tmp_path / "day1/hour2/a.pcap") == 0o600


def test_create_truncates_appends_or_refuses_an_existing_file(tmp_path: Path) -> None:
    """Mutation guarded: a file reopened without truncation keeps its old tail."""
    target = tmp_path / "a.pcap"
    target.write_bytes(b"old content")
    target.chmod(0o644)
    with Directory(tmp_path, file_mode=0o640) as d:
        fd = d.create("a.pcap")
        os.write(fd, b"new")
        os.close(fd)
        assert target.read_bytes() == b"new" and mode(target) == 0o640
        fd = d.create("a.pcap", append=True)
        try:
            assert fl(fd) & os.O_APPEND and fl(fd) & os.O_ACCMODE == os.O_WRONLY
            assert os.lseek(fd, 0, os.SEEK_CUR) == 3
            os.write(fd, b"+more")
        finally:
            os.close(fd)
        assert target.read_bytes() == b"new+more"
        with pytest.raises(FileExistsError):
            d.create("a.pcap", exclusive=True)
        os.close(d.create("b.pcap", exclusive=True))
    assert (tmp_path / "b.pcap").read_bytes() == b""


def test_create_gives_the_group(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file another group")
    with Directory(tmp_path, group=4242) as d:
        os.close(d.create("g.pcap"))
    assert (tmp_path / "g.pcap").stat().st_gid == 4242


def test_links_and_special_files_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root:x:0:0")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link.pcap").symlink_to(outside / "secret")
    (out / "dirlink").symlink_to(outside)
    os.mkfifo(out / "fifo")
    os.link(outside / "secret", out / "hard.pcap")
    (out / "sub").mkdir()
    with Directory(out) as d:
        for name, problem in [
            ("link.pcap", "'link.pcap': is a symbolic link"),
            ("dirlink/secret", "'dirlink/secret': 'dirlink' is not a directory"),
            ("fifo", "'fifo': is not a regular file"),  # no reader: refused, not waited on
            ("hard.pcap", "'hard.pcap': has other hard links; refusing to write through them"),
            ("sub", "'sub': is not a regular file"),
            ("link.pcap/x", "'link.pcap/x': 'link.pcap' is not a directory"),
        ]:
            with pytest.raises(PathOutsideError) as info:
                d.create(name)
            assert str(info.value) == f"{out}: {problem}", name
        with pytest.raises(PathOutsideError, match="is a symbolic link"):
            d.open_read("link.pcap")
        fifo = r"'fifo': is not a regular file \(a FIFO, device or socket\)$"
        with pytest.raises(PathOutsideError, match=fifo):
            d.open_read("fifo")  # and does not block waiting for a writer
        fd = d.open_read("hard.pcap")  # reading through a hard link is harmless
        os.close(fd)
    assert (outside / "secret").read_text() == "root:x:0:0"  # never truncated


def test_refusals_leak_no_descriptor(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "fifo")
    (out / "l").symlink_to("/etc")
    before = len(os.listdir("/proc/self/fd"))
    with Directory(out) as d:
        for _ in range(20):
            for name in ("fifo", "l/passwd", "l", "../x"):
                with pytest.raises(PathOutsideError):
                    d.create(name)
            with pytest.raises(FileNotFoundError):
                d.open_read("none/x")
    assert len(os.listdir("/proc/self/fd")) == before


def test_open_read_stat_and_unlink(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "r.pcap").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "d" / "r.pcap")
    with Directory(tmp_path) as d:
        fd = d.open_read("d/r.pcap")
        try:
            assert fl(fd) & os.O_ACCMODE == os.O_RDONLY and not fl(fd) & os.O_NONBLOCK
            assert os.read(fd, 10) == b"abc"
        finally:
            os.close(fd)
        with pytest.raises(FileNotFoundError):
            d.open_read("d/none")
        with pytest.raises(FileNotFoundError):
            d.open_read("nodir/none")  # a missing directory is not created for reading
        assert not (tmp_path / "nodir").exists()
        assert stat.S_ISLNK(d.stat("link").st_mode)  # the link, not its target
        assert d.stat("d/r.pcap").st_size == 3
        with pytest.raises(PathOutsideError):
            d.stat("../x")
        with pytest.raises(PathOutsideError, match="'link': is not a regular file"):
            d.unlink("link")
        with pytest.raises(PathOutsideError, match="'d': is not a regular file"):
            d.unlink("d")
        d.unlink("d/r.pcap")
        with pytest.raises(FileNotFoundError):
            d.unlink("d/r.pcap")
    assert (tmp_path / "link").is_symlink() and not (tmp_path / "d" / "r.pcap").exists()


def test_walk_lists_regular_files_only(tmp_path: Path) -> None:
    for name in ("a.pcap", "z/b.pcap", "z/y/c.pcap"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "link.pcap").symlink_to(tmp_path / "a.pcap")
    (tmp_path / "dirlink").symlink_to(tmp_path / "z")
    os.mkfifo(tmp_path / "fifo")
    with Directory(tmp_path) as d:
        assert d.walk() == ["a.pcap", "z/b.pcap", "z/y/c.pcap"]


def test_contains_is_lexical(tmp_path: Path) -> None:
    with Directory(tmp_path) as d:
        assert d.contains(tmp_path / "a" / "b.pcap") == "a/b.pcap"
        assert d.contains(tmp_path / "a" / ".." / "c") == "c"
        assert d.contains(tmp_path) is None
        assert d.contains(tmp_path.parent / "other") is None
        assert d.contains(str(tmp_path) + "x/y") is None  # a sibling sharing the prefix


def test_checkpoint_cuts_back_to_the_last_mark(tmp_path: Path) -> None:
    """Mutations guarded: the mark taken before the flush, the cut skipped, writes after the
    abandon reaching the file."""
    path = tmp_path / "c.pcap"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"head")
    cp = Checkpoint(fd)
    assert (cp.good, cp.abandoned) == (4, False)
    os.write(fd, b"rec1")
    cp.mark()
    assert cp.good == 8
    os.write(fd, b"half")
    cp.abandon()
    assert cp.abandoned and path.read_bytes() == b"headrec1"
    os.write(fd, b"more")  # goes to /dev/null now
    cp.mark()  # no effect once abandoned
    assert cp.good == 8
    cp.abandon()  # idempotent
    os.close(fd)
    assert path.read_bytes() == b"headrec1"


def test_checkpoint_of_a_device_only_redirects() -> None:
    """A device (``-w /dev/null``) is not truncated, only pointed at /dev/null."""
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        cp = Checkpoint(fd)
        cp.abandon()
        assert cp.abandoned and stat.S_ISCHR(os.fstat(fd).st_mode)
        assert os.write(fd, b"x") == 1
    finally:
        os.close(fd)


def test_open_named_writes_as_tcpdump(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    path.write_bytes(b"old content")
    fd = open_named(path, write=True)
    try:
        assert fl(fd) & os.O_ACCMODE == os.O_WRONLY
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"new"
    fd = open_named(tmp_path / "fresh.pcap", write=True, mode=0o640)
    os.close(fd)
    assert mode(tmp_path / "fresh.pcap") == 0o640 & ~_umask()
    (tmp_path / "l.pcap").symlink_to(path)
    with pytest.raises(PathOutsideError) as info:
        open_named(tmp_path / "l.pcap", write=True)
    assert str(info.value) == f"{tmp_path / 'l.pcap'}: is a symbolic link; name its target"
    assert path.read_bytes() == b"new"
    fd = open_named("/dev/null", write=True)  # a device is written, not refused
    os.close(fd)
    with pytest.raises(FileNotFoundError):
        open_named(tmp_path / "none" / "x", write=True)


def test_open_named_reads_through_links_and_fifos(tmp_path: Path) -> None:
    path = tmp_path / "r.pcap"
    path.write_bytes(b"abc")
    (tmp_path / "l").symlink_to(path)
    fd = open_named(tmp_path / "l", write=False)
    try:
        assert os.read(fd, 5) == b"abc" and fl(fd) & os.O_ACCMODE == os.O_RDONLY
    finally:
        os.close(fd)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(b"piped")

    writer = threading.Thread(target=feed)
    writer.start()
    fd = open_named(fifo, write=False)  # waits for the writer, as tcpdump -r does
    try:
        assert os.read(fd, 10) == b"piped"
    finally:
        os.close(fd)
        writer.join(5)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_every_refusal_names_the_directory_and_the_name(tmp_path: Path) -> None:
    """Mutations guarded: an error without the directory it is about, or without the name."""
    (tmp_path / "link").symlink_to("/etc")
    (tmp_path / "l.pcap").symlink_to("/etc/passwd")
    with Directory(tmp_path) as d:
        for call in (d.create, d.open_read, d.stat, d.unlink):
            with pytest.raises(PathOutsideError) as info:
                call("../x")
            assert str(info.value) == f"{tmp_path}: '../x': leaves the directory (..)", call
            with pytest.raises(PathOutsideError) as info:
                call("link/passwd")
            assert str(info.value) == f"{tmp_path}: 'link/passwd': 'link' is not a directory"
        with pytest.raises(PathOutsideError) as info:
            d.open_read("l.pcap")
        assert str(info.value) == f"{tmp_path}: 'l.pcap': is a symbolic link"


def test_looking_creates_nothing(tmp_path: Path) -> None:
    with Directory(tmp_path) as d:
        for call in (d.stat, d.unlink, d.open_read):
            with pytest.raises(FileNotFoundError):
                call("new/x.pcap")
        assert list(tmp_path.iterdir()) == []
        (tmp_path / "one.pcap").write_text("x")
        d.unlink("one.pcap")  # a name of one component
        assert list(tmp_path.iterdir()) == []
    again = Directory(tmp_path, create=True)  # existing: fine
    again.close()


def test_a_group_leaves_the_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file another group")
    with Directory(tmp_path, group=4242) as d:
        os.close(d.create("o.pcap"))
    info = (tmp_path / "o.pcap").stat()
    assert (info.st_uid, info.st_gid) == (os.geteuid(), 4242)


def test_abandon_of_a_closed_file_is_quiet_and_private(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "a", os.O_WRONLY | os.O_CREAT, 0o600)
    cp = Checkpoint(fd)
    cp.abandon()
    assert not os.get_inheritable(fd)  # /dev/null in its place stays close-on-exec
    os.close(fd)
    gone = os.open(tmp_path / "b", os.O_WRONLY | os.O_CREAT, 0o600)
    late = Checkpoint(gone)
    os.close(gone)
    late.abandon()  # the descriptor is gone: nothing to cut, no error
    assert late.abandoned
    with contextlib.suppress(OSError):
        os.close(gone)  # the /dev/null put in its place, if any


def test_open_named_details(tmp_path: Path) -> None:
    path = tmp_path / "r.pcap"
    path.write_bytes(b"abc")
    fd = open_named(path, write=False)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)
    os.close(open_named(path, write=True))  # truncated even when nothing is written
    assert path.read_bytes() == b""


def test_directories_made_on_the_way_get_the_group_and_the_mode(tmp_path: Path) -> None:
    """Directories ``create`` makes on the way get the Directory's ``dir_mode`` whatever the
    umask took, and its ``group``, the owner left as it is; one that was there already keeps
    its own. Mutations guarded: a made directory not marked made (`_parent` 13, 14) or one
    found there marked made (35, 36), its mode or place lost (15-18, 20), its group not
    given or given with the owner's field or to the wrong descriptor (39-47), its mode not
    set (48-52)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory another group")
    kept = tmp_path / "kept"
    kept.mkdir(mode=0o700)
    old = os.umask(0o077)
    try:
        with Directory(tmp_path, dir_mode=0o750, file_mode=0o640, group=4242) as d:
            os.close(d.create("kept/new/deeper/x.pcap"))
    finally:
        os.umask(old)
    for made in (kept / "new", kept / "new" / "deeper"):
        info = made.lstat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, 0, 4242)
    info = kept.lstat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o700, 0)
    info = (kept / "new" / "deeper" / "x.pcap").lstat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, 4242)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def _in_child(work: Callable[[], object]) -> str:
    """``repr`` of what ``work`` returns (or "raised NAME ERRNO") in a forked child, which
    exits without running anything of the parent's."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            try:
                text = repr(work())
            except BaseException as exc:  # reported to the parent
                text = f"raised {type(exc).__name__} {getattr(exc, 'errno', None)}"
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode()


#: x86-64 system call numbers, for the filter below.
_SYSCALLS = {"ftruncate": 77, "fchmod": 91}


def _fail_syscall(name: str, error: int) -> None:
    """Make every later call of system call ``name`` by this process fail with ``error``:
    a seccomp filter (the kernel's, as a disk or a file system refusing the call would)."""
    import ctypes

    ld, jeq, ret = 0x20, 0x15, 0x06
    program = [
        (ld, 0, 0, 4),  # the architecture
        (jeq, 0, 3, 0xC000003E),  # AUDIT_ARCH_X86_64, else allowed
        (ld, 0, 0, 0),  # the system call's number
        (jeq, 0, 1, _SYSCALLS[name]),
        (ret, 0, 0, 0x00050000 | error),  # SECCOMP_RET_ERRNO
        (ret, 0, 0, 0x7FFF0000),  # SECCOMP_RET_ALLOW
    ]
    # The same struct sock_filter / sock_fprog as a socket filter's (capsvc's own packing).
    filters = ctypes.create_string_buffer(pack_program(program))
    prog = ctypes.create_string_buffer(SOCK_FPROG.pack(len(program), ctypes.addressof(filters)))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, prog, 0, 0) != 0:  # PR_SET_SECCOMP, MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


needs_x86_64 = pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="the seccomp filter is written for x86-64"
)


@needs_x86_64
@pytest.mark.parametrize("call", ["ftruncate", "fchmod"])
def test_a_file_create_fails_to_truncate_or_chmod_is_closed(tmp_path: Path, call: str) -> None:
    """``create`` whose ftruncate or fchmod fails (EIO) raises that error and leaves no
    descriptor of the file open. Mutation guarded: the descriptor closed as ``os.close(None)``
    (`create` 80), which raised a TypeError in place of the error and leaked it."""
    (tmp_path / "x.pcap").write_bytes(b"old")

    def create() -> list[int]:
        with Directory(tmp_path) as d:
            _fail_syscall(call, errno.EIO)
            try:
                d.create("x.pcap")
            except OSError as exc:
                assert exc.errno == errno.EIO
                return descriptors_of(tmp_path / "x.pcap")
        return [-1]

    assert _in_child(create) == "[]"
    # Without the failure the same call truncates the file and hands its descriptor over (in
    # this process too, so that a mutation run maps this test to ``create``).
    with Directory(tmp_path) as d:
        os.close(d.create("x.pcap"))
    assert (tmp_path / "x.pcap").read_bytes() == b""


@needs_x86_64
def test_a_named_file_that_fails_to_truncate_is_closed(tmp_path: Path) -> None:
    """``open_named(write=True)`` whose ftruncate fails (EIO) raises that error and leaves no
    descriptor of the file open. Mutation guarded: the descriptor closed as ``os.close(None)``
    (`open_named` 36)."""
    path = tmp_path / "w.pcap"
    path.write_bytes(b"old")

    def open_it() -> list[int]:
        _fail_syscall("ftruncate", errno.EIO)
        try:
            open_named(path, write=True)
        except OSError as exc:
            assert exc.errno == errno.EIO
            return descriptors_of(path)
        return [-1]

    assert _in_child(open_it) == "[]"
    assert path.read_bytes() == b"old"
    # Without the failure the same call truncates it (in this process too, so that a mutation
    # run maps this test to ``open_named``).
    os.close(open_named(path, write=True))
    assert path.read_bytes() == b""


def test_a_directory_that_cannot_be_opened_is_left_out_of_a_walk(tmp_path: Path) -> None:
    """``walk`` lists what it can open: a subdirectory its user may not read is left out,
    the rest listed (here the Directory is opened as root and walked as nobody, in a child).
    Mutation guarded: the OSError of opening that subdirectory not suppressed (`_walk` 9)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to walk as another user")
    tmp_path.chmod(0o755)
    (tmp_path / "a.pcap").write_text("x")
    for sub, dir_mode in (("open", 0o755), ("shut", 0o700)):
        (tmp_path / sub).mkdir(mode=dir_mode)
        (tmp_path / sub / "b.pcap").write_text("x")
    with Directory(tmp_path) as d:

        def walk() -> list[str]:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            return d.walk()

        assert _in_child(walk) == repr(["a.pcap", "open/b.pcap"])
        assert d.walk() == ["a.pcap", "open/b.pcap", "shut/b.pcap"]  # as root: all


def test_a_checkpoint_of_a_pipe_is_never_cut_back() -> None:
    """A pipe (``-w -`` into another program) has no position: its Checkpoint marks 0 and
    never seeks, and abandoning it only sends later writes to /dev/null. Mutations guarded:
    the position of an unseekable file asked for (`Checkpoint.__init__` 7: ESPIPE) or its
    mark taken as 1 (15)."""
    read, write = os.pipe()
    try:
        os.write(write, b"head")
        cp = Checkpoint(write)
        assert (cp.good, cp.abandoned) == (0, False)
        os.write(write, b"rec1")
        cp.mark()
        assert cp.good == 0
        cp.abandon()
        assert cp.abandoned and stat.S_ISCHR(os.fstat(write).st_mode)
        os.write(write, b"lost")
        assert os.read(read, 100) == b"headrec1"
    finally:
        os.close(read)
        os.close(write)
