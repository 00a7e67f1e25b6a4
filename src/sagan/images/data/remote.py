"""MNIST and CIFAR-10 training sets, downloaded once into the cache folder.

Downloads use :mod:`urllib` only, go to a temporary file that is renamed into place after its
md5 checksum is verified, and are parsed once into ``<name>/train-v1.npz``. Files can also be
placed in the cache by hand (the offline error names the exact path); they are verified too.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import os
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagan.errors import SaganError
from sagan.images.data.base import TensorImageDataset, check_resolution, pad_to, resize_square_batch
from sagan.images.data.cache import cache_dir as default_cache_dir
from sagan.images.data.cache import ensure_dir, load_arrays, save_arrays, temp_file_for
from sagan.images.data.digits import mnist_arrays_ok

__all__ = [
    "CIFAR10_FILE",
    "MNIST_FILES",
    "RemoteFile",
    "fetch",
    "load_cifar10",
    "load_mnist",
    "parse_cifar10_tar",
    "parse_idx",
]

TIMEOUT_S = 30.0
USER_AGENT = "torch-sagan (https://pypi.org/project/torch-sagan)"


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its name, md5 and the URLs to try in order (mirrors after the first)."""

    filename: str
    md5: str
    urls: tuple[str, ...]


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_FILES = {
    "images": RemoteFile(
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        tuple(m + "train-images-idx3-ubyte.gz" for m in _MNIST_MIRRORS),
    ),
    "labels": RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
        tuple(m + "train-labels-idx1-ubyte.gz" for m in _MNIST_MIRRORS),
    ),
}
CIFAR10_FILE = RemoteFile(
    "cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
)
CACHE_FILE = "train-v1.npz"
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, md5: str) -> None:
    """Stream ``url`` to a temp file next to ``dest``; verify md5; rename into place.

    Network errors propagate (``URLError``, timeouts, ``OSError``); a checksum mismatch raises
    :class:`SaganError` after deleting the downloaded bytes.
    """
    fd, tmp = temp_file_for(dest)
    try:
        h = hashlib.md5()
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                out.write(chunk)
                h.update(chunk)
        got = h.hexdigest()
        if got != md5:
            raise SaganError(
                f"downloaded {url} but its md5 is {got}, expected {md5}; the file was deleted: "
                "run again (a proxy or a broken connection may have altered it)"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def fetch(remote: RemoteFile, folder: Path, what: str) -> Path:
    """Return ``folder/remote.filename`` with a verified md5, downloading it if needed.

    A present file with a wrong checksum is deleted and downloaded again. Raises
    :class:`SaganError` when offline (naming the URL and where to put the file by hand), when
    the server refuses, or when the download's checksum is wrong.
    """
    dest = folder / remote.filename
    if dest.is_file():
        if _md5(dest) == remote.md5:
            return dest
        dest.unlink()  # corrupt or partial: fetch again
    print(f"sagan: downloading {what} from {remote.urls[0]} to {dest}", file=sys.stderr)
    failure = ""
    offline = False
    for url in remote.urls:
        try:
            _download(url, dest, remote.md5)
            return dest
        except urllib.error.HTTPError as e:
            failure = f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            failure = f"{type(e).__name__}: {reason}"
            offline = True
        except OSError as e:
            if isinstance(e, PermissionError) or e.errno in _DISK_ERRNOS:
                raise SaganError(
                    f"could not save {what} to {dest} ({e.strerror or e}); set SAGAN_CACHE to "
                    "a writable folder with enough free space"
                ) from None
            failure = f"{type(e).__name__}: {e}"  # e.g. an SSL error: treat as network trouble
            offline = True
        except http.client.HTTPException as e:  # e.g. IncompleteRead: the connection broke
            failure = f"{type(e).__name__}: {e}"
            offline = True
    hint = "this machine looks offline" if offline else "the server refused the download"
    raise SaganError(
        f"could not download {what} from {remote.urls[0]} ({failure}); {hint}: download that "
        f"file by hand and place it at {dest} (md5 {remote.md5}), then run again"
    )


# --------------------------------------------------------------------------- parsers


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an (uncompressed) idx file (the MNIST format) into an array of its stored shape.

    Raises :class:`SaganError` when the bytes are not a valid idx file.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise SaganError("not an idx file (bad magic number); delete it and run again")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SaganError("idx file is truncated in its header; delete it and run again")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise SaganError(
            f"idx file holds {len(data) - header} data bytes, expected "
            f"{count * dtype.itemsize} for shape {shape}; delete it and run again"
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape).copy()


def _read_idx_gz(path: Path) -> np.ndarray:
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise SaganError(f"cannot decompress {path} ({e}); delete it and run again") from None
    try:
        return parse_idx(data)
    except SaganError as e:
        raise SaganError(f"{path}: {e}") from None


def _get(d: dict, key: str) -> object:
    """A key from a CIFAR pickle dict, whose keys are bytes (py2 pickles) or str."""
    if key.encode() in d:
        return d[key.encode()]
    return d[key]


def parse_cifar10_tar(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse ``cifar-10-python.tar.gz`` -> images ``(N, 32, 32, 3)`` uint8 (HWC), labels
    ``(N,)`` int64, class names (from ``batches.meta``).

    Reads ``data_batch_1`` .. ``data_batch_5`` (the 50k training images). The pickles are only
    loaded from a file whose md5 was verified (or from one the caller vouches for).
    """
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["batches.meta"]
    try:
        raw: dict[str, bytes] = {}
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:  # one sequential pass over the gzip stream
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted:
                    f = tar.extractfile(member)
                    if f is not None:
                        raw[name] = f.read()
        missing = [n for n in wanted if n not in raw]
        if missing:
            raise SaganError(f"{path} lacks {', '.join(missing)}; delete it and run again")
        images, labels = [], []
        for name in wanted[:-1]:
            batch = pickle.loads(raw.pop(name), encoding="bytes")
            data = np.asarray(_get(batch, "data"), dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(_get(batch, "labels"), dtype=np.int64).reshape(-1))
        meta = pickle.loads(raw["batches.meta"], encoding="bytes")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(meta, "label_names")]
    except SaganError:
        raise
    except Exception as e:  # tarfile.ReadError, EOFError, pickle errors, KeyError, ValueError
        raise SaganError(
            f"cannot read {path} as the CIFAR-10 python archive ({type(e).__name__}: {e}); "
            "delete it and run again"
        ) from None
    image_array, label_array = np.concatenate(images), np.concatenate(labels)
    if len(image_array) != len(label_array) or label_array.max(initial=0) >= len(names):
        raise SaganError(
            f"{path} has inconsistent images, labels or names; delete it and run again"
        )
    return np.ascontiguousarray(image_array), label_array, names


# --------------------------------------------------------------------------- loaders


def _cifar_ok(a: dict[str, np.ndarray]) -> bool:
    images, labels, names = a.get("images"), a.get("labels"), a.get("class_names")
    return (
        images is not None
        and labels is not None
        and names is not None
        and images.dtype == np.uint8
        and images.shape[1:] == (32, 32, 3)
        and labels.shape == (len(images),)
        and len(images) > 0
        and names.ndim == 1
        and len(names) >= 2
    )


def _try_save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Cache parsed arrays; a full or read-only disk only costs re-parsing next time."""
    with contextlib.suppress(OSError):
        save_arrays(path, **arrays)


def load_mnist(
    resolution: int, *, conditional: bool | None = None, cache_dir: Path | None = None
) -> TensorImageDataset:
    """MNIST training set (60k): images ``(60000, 1, R, R)`` uint8, padded to 32 then resized.

    Labelled (10 classes ``"0"``..``"9"``) unless ``conditional`` is False.
    """
    resolution = check_resolution(resolution)
    folder = ensure_dir((cache_dir or default_cache_dir()) / "mnist")
    arrays = load_arrays(folder / CACHE_FILE, mnist_arrays_ok)
    if arrays is None:
        images = _read_idx_gz(fetch(MNIST_FILES["images"], folder, "MNIST training images"))
        labels = _read_idx_gz(fetch(MNIST_FILES["labels"], folder, "MNIST training labels"))
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
            raise SaganError(
                f"MNIST files in {folder} have shapes {images.shape} and {labels.shape}; "
                "delete them and run again"
            )
        arrays = {"images": images.astype(np.uint8), "labels": labels.astype(np.int64)}
        _try_save(folder / CACHE_FILE, arrays)
    images = resize_square_batch(pad_to(arrays["images"], 32), resolution)[:, None]
    labelled = conditional is not False
    return TensorImageDataset(
        images,
        arrays["labels"] if labelled else None,
        name="mnist",
        num_classes=10 if labelled else 0,
        class_names=[str(i) for i in range(10)] if labelled else None,
    )


def load_cifar10(
    resolution: int, *, conditional: bool | None = None, cache_dir: Path | None = None
) -> TensorImageDataset:
    """CIFAR-10 training set (50k): images ``(50000, 3, R, R)`` uint8, resized if R != 32.

    Labelled (10 named classes, "airplane".."truck") unless ``conditional`` is False.
    """
    resolution = check_resolution(resolution)
    folder = ensure_dir((cache_dir or default_cache_dir()) / "cifar10")
    arrays = load_arrays(folder / CACHE_FILE, _cifar_ok)
    if arrays is None:
        images, labels, names = parse_cifar10_tar(fetch(CIFAR10_FILE, folder, "CIFAR-10"))
        arrays = {"images": images, "labels": labels, "class_names": np.array(names, dtype=str)}
        _try_save(folder / CACHE_FILE, arrays)
    images = resize_square_batch(arrays["images"], resolution).transpose(0, 3, 1, 2)
    names = [str(n) for n in arrays["class_names"]]
    labelled = conditional is not False
    return TensorImageDataset(
        np.ascontiguousarray(images),
        arrays["labels"] if labelled else None,
        name="cifar10",
        num_classes=len(names) if labelled else 0,
        class_names=names if labelled else None,
    )
