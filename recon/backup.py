"""`recon backup DIR` / `recon restore DIR`: the whole database state, verifiable.

A backup is DuckDB's ``EXPORT DATABASE`` (schema.sql, load.sql, one Parquet
file per table) plus ``manifest.json``: the sha256 of every file, the row
count of every table and the schema version.  Restore checks every hash
before anything changes, imports into a new file beside the database, checks
the row counts, and only then swaps it in (the replaced state is exported to
``<db>.backups/`` first).  A database from an older recon is migrated on the
next open, like any other.

``--encrypt`` seals every file with AES-256-GCM (the ``cryptography``
library) in 1 MiB chunks; each chunk's nonce carries its index and a
last-chunk flag, and the associated data names the backup and the file, so a
flipped byte, a truncated, reordered or swapped file is refused.  The key is
32 bytes, base64, from the environment variable ``RECON_BACKUP_KEY`` or a key
file -- never from the command line, where other users could read it.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from recon import __version__
from recon.errors import ReconError

KEY_ENV = "RECON_BACKUP_KEY"
MANIFEST = "manifest.json"
CONTENTS = "contents.json"  # the plain manifest, sealed inside an encrypted backup
FORMAT = "recon-backup"
CHUNK = 1 << 20
MAGIC = b"RCNBAK1\n"
_PREFIX = 7  # nonce: 7 random bytes + 4-byte chunk index + 1-byte last flag
_TAG = 16
_KEY_CHECK = b"recon backup key check"


# --- keys ---------------------------------------------------------------------------
def read_key(key_file: Path | None = None) -> bytes | None:
    """The backup key from `key_file`, else from $RECON_BACKUP_KEY, else None."""
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ReconError(f"{key_file}: cannot read the key file: {exc}") from exc
        return _decode_key(text, str(key_file))
    text = os.environ.get(KEY_ENV, "").strip()
    return _decode_key(text, f"${KEY_ENV}") if text else None


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReconError(f"{where}: expected a base64 key of 32 bytes: {exc}") from exc
    if len(key) != 32:
        raise ReconError(f"{where}: expected a base64 key of 32 bytes, got {len(key)} bytes "
                         "(make one with: python -c \"import os, base64; "
                         "print(base64.b64encode(os.urandom(32)).decode())\")")
    return key


def new_key() -> str:
    """A fresh random key, base64 (for $RECON_BACKUP_KEY or a key file)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# --- export / import ------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table of the database (temporary tables excluded)."""
    names = [r[0] for r in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'main' and not temporary order by table_name").fetchall()]
    return {n: int(con.execute(f'select count(*) from "{n}"').fetchall()[0][0]) for n in names}


def export_to(con: duckdb.DuckDBPyConnection, dest: Path) -> dict[str, Any]:
    """EXPORT DATABASE into the new directory `dest` and write its manifest; return it."""
    from recon.audit import head as audit_head
    from recon.db import sql_literal, stored_version

    dest.mkdir(mode=0o700, parents=True)
    con.execute(f"export database {sql_literal(dest)} (format parquet)")
    manifest = {
        "format": FORMAT, "version": 1, "encrypted": False,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recon_version": __version__, "schema_version": stored_version(con),
        "tables": table_counts(con),
        "files": {p.name: _sha256(p) for p in sorted(dest.iterdir())},
        "audit_head": audit_head(con),  # `recon audit verify --against` reads it
    }
    _write_json(dest / MANIFEST, manifest)
    for p in dest.iterdir():
        os.chmod(p, 0o600)
    return manifest


def auto_backup(con: duckdb.DuckDBPyConnection, db_path: Path, *, reason: str) -> Path:
    """Export the database to ``<db>.backups/<UTC timestamp>-<reason>/``; return the dir."""
    root = db_path.with_name(db_path.name + ".backups")
    root.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = root / f"{stamp}-{reason}"
    export_to(con, dest)
    return dest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)


# --- sealing ----------------------------------------------------------------------------
def _aad(backup_id: str, name: str) -> bytes:
    return f"{FORMAT}/1/{backup_id}/{name}".encode()


def _aead(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ModuleNotFoundError as exc:  # pragma: no cover - a declared dependency
        raise ReconError("encrypted backups need the 'cryptography' package "
                         "(pip install cryptography)") from exc
    return AESGCM(key)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal_file(src: Path, dest: Path, key: bytes, aad: bytes) -> None:
    """Encrypt `src` into `dest` chunk by chunk (AES-256-GCM, STREAM construction)."""
    aead, prefix = _aead(key), secrets.token_bytes(_PREFIX)
    with src.open("rb") as fin, dest.open("wb") as fout:
        fout.write(MAGIC + prefix)
        block, index = fin.read(CHUNK), 0
        while True:
            following = fin.read(CHUNK)
            last = not following
            fout.write(aead.encrypt(_nonce(prefix, index, last), block, aad))
            if last:
                break
            block, index = following, index + 1
    os.chmod(dest, 0o600)


def _open_chunks(fh: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(ciphertext block, is last) of a sealed file."""
    size = CHUNK + _TAG
    block = fh.read(size)
    while True:
        following = fh.read(size)
        yield block, not following
        if not following:
            return
        block = following


def unseal_file(src: Path, dest: Path, key: bytes, aad: bytes) -> None:
    """Decrypt `src` into `dest`; ReconError if any byte was changed, cut or moved."""
    from cryptography.exceptions import InvalidTag

    aead = _aead(key)
    with src.open("rb") as fin, dest.open("wb") as fout:
        head = fin.read(len(MAGIC) + _PREFIX)
        if len(head) != len(MAGIC) + _PREFIX or not head.startswith(MAGIC):
            raise ReconError(f"{src}: not a sealed recon backup file (damaged header)")
        prefix = head[len(MAGIC):]
        for index, (block, last) in enumerate(_open_chunks(fin)):
            try:
                fout.write(aead.decrypt(_nonce(prefix, index, last), block, aad))
            except InvalidTag as exc:
                raise ReconError(
                    f"{src}: chunk {index} fails authentication: the file was altered, cut "
                    "or damaged; restore refused"
                ) from exc
    os.chmod(dest, 0o600)


def _seal_dir(plain: Path, dest: Path, key: bytes) -> None:
    """Seal every file of the plain export `plain` into the new directory `dest`."""
    backup_id = secrets.token_hex(16)
    dest.mkdir(mode=0o700)
    inner = json.loads((plain / MANIFEST).read_text(encoding="utf-8"))
    (plain / MANIFEST).rename(plain / CONTENTS)
    files = {}
    for p in sorted(plain.iterdir()):
        target = dest / (p.name + ".enc")
        seal_file(p, target, key, _aad(backup_id, p.name))
        files[target.name] = _sha256(target)
    nonce = secrets.token_bytes(12)  # GCM nonces must never repeat under one key
    check = _aead(key).encrypt(nonce, _KEY_CHECK, _aad(backup_id, "key-check"))
    _write_json(dest / MANIFEST, {
        "format": FORMAT, "version": 1, "encrypted": True, "cipher": "AES-256-GCM",
        "chunk_bytes": CHUNK, "backup_id": backup_id,
        "created_at": inner["created_at"], "recon_version": __version__,
        "key_check": base64.b64encode(nonce + check).decode(),
        "files": files,
    })


# --- backup / restore --------------------------------------------------------------------
def backup(db_path: Path, dest: Path, *, key: bytes | None = None) -> dict[str, Any]:
    """Write a backup of the database at `db_path` into the new directory `dest`."""
    from recon.db import check_dir, connect
    from recon.lock import hold

    if not db_path.is_file():
        raise ReconError(f"{db_path}: no database here")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReconError(f"{dest}: exists and is not an empty directory; "
                         "give a new directory for the backup")
    check_dir(dest.parent, f"recon backup {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with hold(db_path, f"recon backup {dest}"):
            con = connect(db_path)
            try:
                manifest = export_to(con, work / "plain")
            finally:
                con.close()
        staged = work / "plain"
        if key is not None:
            _seal_dir(staged, work / "sealed", key)
            staged = work / "sealed"
        if dest.exists():
            dest.rmdir()
        os.replace(staged, dest)  # a reader never sees half a backup
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _load_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReconError(f"{src}: not a recon backup (no {MANIFEST})") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReconError(f"{path}: damaged manifest: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReconError(f"{path}: not a recon backup manifest")
    return data


def _check_files(src: Path, files: dict[str, str]) -> None:
    """Every listed file is there with its sha256, and no other file is."""
    present = {p.name for p in src.iterdir()} - {MANIFEST}
    if present - set(files):
        raise ReconError(f"{src}: unexpected file(s) {sorted(present - set(files))}; "
                         "the backup was altered; restore refused")
    for name, digest in sorted(files.items()):
        path = src / name
        if not path.is_file():
            raise ReconError(f"{src}: file {name} is missing; restore refused")
        if _sha256(path) != digest:
            raise ReconError(f"{path}: sha256 differs from the manifest: the file was "
                             "altered or damaged; restore refused")


def open_backup(src: Path, work: Path, key: bytes | None) -> dict[str, Any]:
    """Verify the backup `src` and put its plain export in the new dir `work`; return manifest."""
    manifest = _load_manifest(src)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ReconError(f"{src / MANIFEST}: no file list")
    _check_files(src, files)
    if not manifest.get("encrypted"):
        shutil.copytree(src, work)
        return manifest
    if key is None:
        raise ReconError(f"{src}: the backup is encrypted; set ${KEY_ENV} or give --key-file")
    backup_id = str(manifest.get("backup_id"))
    _check_key(manifest, key, backup_id, src)
    work.mkdir(mode=0o700)
    for name in sorted(files):
        plain_name = name.removesuffix(".enc")
        unseal_file(src / name, work / plain_name, key, _aad(backup_id, plain_name))
    inner = _load_manifest_file(work / CONTENTS)
    _check_files_plain(work, inner.get("files", {}))
    return inner


def _check_key(manifest: dict[str, Any], key: bytes, backup_id: str, src: Path) -> None:
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.b64decode(str(manifest.get("key_check")), validate=True)
        _aead(key).decrypt(raw[:12], raw[12:], _aad(backup_id, "key-check"))
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise ReconError(f"{src}: the key does not open this backup (wrong key, or the "
                         "manifest was altered); restore refused") from exc


def _load_manifest_file(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ReconError(f"{path}: damaged manifest")
    return data


def _check_files_plain(work: Path, files: dict[str, str]) -> None:
    for name, digest in files.items():
        if not (work / name).is_file() or _sha256(work / name) != digest:
            raise ReconError(f"{work.name}/{name}: does not match the sealed manifest; "
                             "restore refused")


def restore(
    src: Path, db_path: Path, *, key: bytes | None = None, force: bool = False,
    actor: str | None = None,
) -> Path:
    """Replace the database at `db_path` with the backup `src` (verified first).

    The restored database gets one more audit record, ``restore``, naming the
    backup: rolling the state back is itself part of the history.
    """
    from recon.db import check_dir
    from recon.lock import hold

    if not src.is_dir():
        raise ReconError(f"{src}: no backup directory here")
    if db_path.exists() and not force:
        raise ReconError(f"{db_path}: a database exists; give --force to replace it "
                         "(its current state is exported to "
                         f"{db_path.name}.backups/ first)")
    check_dir(db_path.parent, f"--db {db_path}")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{db_path.name}.restore-", dir=db_path.parent))
    try:
        manifest = open_backup(src, work / "export", key)
        with hold(db_path, f"recon restore {src}"):
            fresh = _import(work / "export", work / "restored.duckdb", manifest)
            about = {k: manifest.get(k) for k in ("created_at", "schema_version", "recon_version")}
            _swap_in(fresh, db_path, src, actor or _os_user(), about)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return db_path


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def _import(export: Path, target: Path, manifest: dict[str, Any]) -> Path:
    """IMPORT DATABASE into a new file and check every table's row count."""
    from recon.db import sql_literal

    con = duckdb.connect(str(target))
    try:
        con.execute(f"import database {sql_literal(export)}")
        counts = table_counts(con)
        expected = manifest.get("tables") or {}
        if counts != expected:
            diff = sorted(k for k in set(counts) | set(expected)
                          if counts.get(k) != expected.get(k))
            raise ReconError(f"{export}: restored row counts differ from the manifest "
                             f"for {diff}; restore refused")
        con.execute("checkpoint")
    except duckdb.Error as exc:
        raise ReconError(f"cannot import the backup: {exc}") from exc
    finally:
        con.close()
    return target


def _swap_in(fresh: Path, db_path: Path, src: Path, actor: str, about: dict[str, Any]) -> None:
    """Export the current database (if any), rename the restored file over it, audit that."""
    from recon.db import audit, connect, private, transaction

    if db_path.exists():
        con = connect(db_path)
        try:
            auto_backup(con, db_path, reason="before-restore")
        finally:
            con.close()  # checkpoints: no .wal of the old file may outlive it
        wal = db_path.with_name(db_path.name + ".wal")
        if wal.exists():
            raise ReconError(f"{wal}: the old database's log is still there; restore refused")
    os.replace(fresh, db_path)
    private(db_path)
    con = connect(db_path)  # migrates a backup from an older recon
    try:
        with transaction(con):
            audit(con, actor, "restore", db_path.name, {"from": str(src), **about})
    finally:
        con.close()
