//! Writing results: every file is written whole or not at all (a temporary
//! file in the same directory, then a rename), so an interrupted run never
//! leaves a half-written report behind.

use crate::Failure;
use std::io::Write;
use std::path::Path;

pub fn write_atomically(path: &Path, contents: &str) -> Result<(), Failure> {
    write_bytes_atomically(path, contents.as_bytes())
}

pub fn write_bytes_atomically(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    write_atomically_with(path, |w| w.write_all(contents))
}

/// Stream a file's contents through `write`, then move it into place whole.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let fail = |what: &str, e: std::io::Error| Failure::Io(format!("{}: cannot {what}: {e}", path.display()));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| fail("create a temporary file", e))?;
    let mut out = std::io::BufWriter::new(file);
    let written = write(&mut out).and_then(|()| out.flush()).and_then(|()| out.get_ref().sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    std::fs::rename(&tmp, path).map_err(|e| fail("move into place", e))
}

pub fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Io(format!("{}: cannot create the directory: {e}", dir.display())))
}
