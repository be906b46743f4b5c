"""Dropping root after the capture sockets are open (as ``tcpdump -Z`` does).

Thin IO module: looks the user up, hands it the service's own files, and switches groups, group
and user, in that order (the user last: after ``setuid`` the others are no longer allowed).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable

from .._errors import PermissionNeededError

__all__ = ["drop_privileges", "lookup_user"]


def lookup_user(user: str, option: str = "--user") -> tuple[int, int]:
    """Return (uid, gid) of a user name or number (``option`` names the flag in errors).

    Raises:
        PermissionNeededError: no such user.
    """
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise PermissionNeededError(f"{option}: no user named {user!r}") from None
    return entry.pw_uid, entry.pw_gid


def drop_privileges(
    user: str, chown: Iterable[str] = (), *, group: int | None = None, option: str = "--user"
) -> None:
    """Become ``user``: supplementary groups, gid and uid; nothing happens when not root.

    Args:
        user: the user name (or number) to become.
        chown: paths handed to the user first (the output directory, the token file, the unix
            socket), so the service can still write and reload as that user.
        group: the group the service's files are given (``file_group``): the paths are
            handed to it rather than to the user's own group, and the user must be a member
            (else files it creates later could not be given to it).
        option: the flag named in errors (``-Z`` for the command-line jobs).

    Raises:
        PermissionNeededError: no such user, the user is no member of ``group``, or the switch
            failed (then the process must not go on as root believing it dropped).
    """
    uid, gid = lookup_user(user, option)
    if os.geteuid() != 0:
        if os.geteuid() == uid:
            return
        raise PermissionNeededError(f"{option} {user}: only root can change user; run as root")
    try:
        name = pwd.getpwuid(uid).pw_name
        groups = os.getgrouplist(name, gid)
    except KeyError:
        groups = [gid]
    if group is not None and group not in groups:
        raise PermissionNeededError(
            f"{option} {user}: is no member of group {group} (file_group); add the user to it "
            "(usermod -a -G GROUP USER) or leave file_group out"
        )
    for path in chown:
        if os.path.lexists(path):
            os.chown(path, uid, gid if group is None else group, follow_symlinks=False)
    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise PermissionNeededError(f"{option} {user}: switching user failed: {exc}") from exc
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise PermissionNeededError(f"{option} {user}: still running as uid {os.getuid()}")
