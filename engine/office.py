"""LibreOffice, headless: .docx and .xlsx to PDF (for route documents and previews).

One `soffice --convert-to pdf` call converts many files (starting the suite costs a few seconds),
with a private profile folder so that several conversions, or a desktop LibreOffice of the same
user, never block each other; one such process per core converts its share of the files. Nothing is fetched: fonts are
the system's (Debian's fonts-liberation2 / fonts-dejavu-core carry Cyrillic; see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .problems import InputError, Problem

SOFFICE_NAMES = ("soffice", "libreoffice")
BATCH = 400  # files per soffice call: keeps the command line far below the system's limit


def find_soffice() -> str | None:
    for name in SOFFICE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_soffice() -> str:
    found = find_soffice()
    if found is None:
        raise InputError([Problem("--pdf", "для PDF нужен LibreOffice (команда soffice): установите пакет "
                                           "libreoffice-writer-nogui (LibreOffice is needed for PDF)",
                                  "no_libreoffice")], title="PDF не создан (no LibreOffice)")
    return found


def convert_to_pdf(files: list[Path], timeout_s: float = 3600.0, workers: int | None = None) -> list[Path]:
    """Writes NAME.pdf beside each file; returns the PDFs. Stems must be unique among `files`.

    `workers` LibreOffice processes (default: one per core, at most 4) convert interleaved shares of
    the files, each with its own profile: one soffice converts one document at a time."""
    if not files:
        return []
    soffice = require_soffice()
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise ValueError("convert_to_pdf: file names must be unique (they meet in one output folder)")
    workers = max(1, min(workers or min(4, os.cpu_count() or 1), len(files)))
    with tempfile.TemporaryDirectory(prefix="marshrut-office-") as tmp, ThreadPoolExecutor(workers) as pool:
        shares = [files[i::workers] for i in range(workers)]
        done = list(pool.map(lambda i: _convert(soffice, shares[i], Path(tmp) / str(i), timeout_s), range(workers)))
    by_source = {source: pdf for part in done for source, pdf in part}
    return [by_source[f] for f in files]


def _convert(soffice: str, files: list[Path], work: Path, timeout_s: float) -> list[tuple[Path, Path]]:
    profile, converted = work / "profile", work / "pdf"
    converted.mkdir(parents=True)
    out = []
    for lo in range(0, len(files), BATCH):
        batch = files[lo:lo + BATCH]
        command = [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
                   "--convert-to", "pdf", "--outdir", str(converted), *[str(f) for f in batch]]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s,
                              env={**os.environ, "HOME": str(work)}, check=False)
        for source in batch:
            pdf = converted / (source.stem + ".pdf")
            if not pdf.exists():
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                raise InputError([Problem(source.name, f"LibreOffice не создал PDF: {tail[0][:300]}",
                                          "pdf_failed")], title="PDF не создан")
            target = source.with_suffix(".pdf")
            shutil.move(str(pdf), target)
            out.append((source, target))
    return out
