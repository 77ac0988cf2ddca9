"""Changes to many files staged in memory, shown as a diff, then applied all or nothing."""

from __future__ import annotations

import contextlib
import difflib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


class StagedFiles:
    """Reads see the staged text; nothing touches the disk until `applied`."""

    def __init__(self, root: Path):
        self.root = root
        self._texts: dict[Path, str | None] = {}  # None: delete
        self._removed_dirs: list[Path] = []

    def read(self, relative: str) -> str:
        path = self.root / relative
        if path in self._texts:
            text = self._texts[path]
            if text is None:
                raise FileNotFoundError(path)
            return text
        return path.read_text()

    def exists(self, relative: str) -> bool:
        path = self.root / relative
        return self._texts[path] is not None if path in self._texts else path.exists()

    def write(self, relative: str, text: str) -> None:
        self._texts[self.root / relative] = text

    def edit(self, relative: str, change: Callable[[str], str]) -> None:
        self.write(relative, change(self.read(relative)))

    def delete(self, relative: str) -> None:
        self._texts[self.root / relative] = None

    def remove_dir(self, relative: str) -> None:
        self._removed_dirs.append(self.root / relative)

    def plan(self) -> list[str]:
        """One line per file: created, edited or deleted."""
        lines = []
        for path, text in sorted(self._texts.items()):
            verb = "delete" if text is None else "edit" if path.exists() else "create"
            lines.append(f"{verb:<7}{path.relative_to(self.root)}")
        lines += [f"delete {path.relative_to(self.root)}/ (the whole folder)" for path in self._removed_dirs]
        return lines

    def diff(self) -> str:
        chunks = []
        for path, text in sorted(self._texts.items()):
            before = path.read_text() if path.exists() else ""
            relative = str(path.relative_to(self.root))
            chunks += difflib.unified_diff(
                before.splitlines(keepends=True),
                (text or "").splitlines(keepends=True),
                fromfile=f"a/{relative}" if path.exists() else "/dev/null",
                tofile=f"b/{relative}" if text is not None else "/dev/null",
            )
        return "".join(chunks)

    @property
    def written(self) -> int:
        """Files created, edited or deleted (folders count once)."""
        return len(self._texts) + len(self._removed_dirs)

    @contextlib.contextmanager
    def applied(self, also_restore: tuple[str, ...] = ()) -> Iterator[None]:
        """Write every change; if the block raises, put every file (and `also_restore`, e.g. uv.lock,
        which a command in the block rewrites) back as it was, then re-raise."""
        keep = {self.root / name for name in also_restore} | set(self._texts)
        originals = {path: path.read_bytes() for path in keep if path.exists()}
        created_dirs = {self._new_top_folder(path) for path in self._texts} - {None}
        with tempfile.TemporaryDirectory(prefix="staged-", dir=self.root) as backup:
            moved: list[tuple[Path, Path]] = []
            try:
                for index, folder in enumerate(self._removed_dirs):
                    target = Path(backup) / str(index)
                    shutil.move(folder, target)
                    moved.append((folder, target))
                for path, text in self._texts.items():
                    if text is None:
                        path.unlink()
                    else:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(text)
                yield
            except BaseException:
                for path in keep:
                    if path in originals:
                        path.write_bytes(originals[path])
                    elif path.exists():
                        path.unlink()
                for folder in created_dirs:
                    shutil.rmtree(folder, ignore_errors=True)
                for folder, target in moved:
                    shutil.move(target, folder)
                raise

    def _new_top_folder(self, path: Path) -> Path | None:
        """The outermost folder above `path` that does not exist yet (with what is written into it)."""
        top = None
        for folder in path.relative_to(self.root).parents:
            if folder.parts and not (self.root / folder).exists():
                top = self.root / folder
        return top
