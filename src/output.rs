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
    let fail = |what: &str, e: std::io::Error| Failure::Io(format!("{}: cannot {what}: {e}", path.display()));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| fail("create a temporary file", e))?;
    file.write_all(contents).map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("flush", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("move into place", e))
}

pub fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Io(format!("{}: cannot create the directory: {e}", dir.display())))
}
