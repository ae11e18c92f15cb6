//! Files written whole or not at all: a reader (or a run that dies halfway)
//! never sees half of one.

use std::path::{Path, PathBuf};

/// Where a file is written before it is renamed over `path`: `PATH.tmp`.
pub fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes the file at `path` whole or not at all: `write` makes it at
/// [`temporary_beside`] `path` (one a run that died left there removed
/// first), which is then renamed over `path`.
pub fn write_whole<T, E: From<std::io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = temporary_beside(path);
    if tmp.exists() {
        std::fs::remove_file(&tmp)?;
    }
    let value = write(&tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_a_good_one_replaces_it() {
        let dir = std::env::temp_dir().join(format!("inferbench-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.json");
        std::fs::write(&path, "old").unwrap();
        let failed: Result<(), std::io::Error> = write_whole(&path, |tmp| {
            std::fs::write(tmp, "half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        write_whole(&path, |tmp| std::fs::write(tmp, "new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!temporary_beside(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
