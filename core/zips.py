"""Reading zip members without trusting the sizes a zip declares.

``ZipFile.read`` inflates a deflated member in one call of up to 2 GiB and
only then cuts it to the size the headers declare, so a 1 MB zip whose
headers claim a 4 KB member can make the process allocate gigabytes (a
"lying" zip bomb, which the ratio checks on the declared sizes cannot see).
:func:`read_member` inflates in bounded chunks and stops at the declared
size; the CRC check at the end then reports the lie.
"""

from __future__ import annotations

import zipfile

CHUNK_BYTES = 1 << 16


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo | str) -> bytes:
    """The bytes of ``member``, holding at most its declared size plus one chunk in memory.

    Raises:
        zipfile.BadZipFile: If the member inflates to more (or other) bytes than
            its headers declare ("Bad CRC-32"), or its data is damaged.
        RuntimeError: If it is encrypted. NotImplementedError: For an unknown
            compression method. (As ``ZipFile.read`` raises them.)
    """
    info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    chunks, total = [], 0
    with archive.open(info) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            total += len(chunk)
            if total > info.file_size:  # zipfile stops at the declared size; this is a second fence
                raise zipfile.BadZipFile(f"{info.filename!r} expands beyond its declared {info.file_size:,} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
