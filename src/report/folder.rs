//! The report folder on disk: what rtsim may write over, checked before any simulation runs, and the
//! atomic write itself.
//!
//! rtsim replaces a folder only when it wrote it: every report (and sweep) folder holds a marker file,
//! [`MARKER`], and a folder without it is refused — so `--out notes.txt` or `--out ~/Documents` can
//! never cost the user a file. An empty folder is filled in place (nothing in it to lose); a missing one
//! is created. [`check`] runs before the first simulation and also proves the place writable, so that a
//! read-only disk is an error in milliseconds rather than after the whole run. [`write_atomically`]
//! builds the folder beside its final place and renames it over the old report only when every file is
//! written. Nothing here deletes or moves a path it has not recognised as its own.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The file that marks a folder as one rtsim wrote (and may therefore replace whole).
pub const MARKER: &str = ".rtsim-report";

/// What the marker file says, for a person who finds it.
const MARKER_TEXT: &[u8] =
    b"This folder was written by rtsim. rtsim replaces it whole when a new report \
is written to the same place; it never replaces a folder without this file.\n";

/// What is at the output path now.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    Nothing,
    EmptyFolder,
    RtsimFolder,
}

/// Classifies `dir`, refusing anything rtsim must not replace.
fn existing(dir: &Path) -> anyhow::Result<Existing> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dir.display())),
    };
    if meta.file_type().is_symlink() {
        bail!(
            "{} is a symbolic link: rtsim writes a report only to a new folder, an empty one, or a \
             report folder it wrote; choose another --out",
            dir.display()
        );
    }
    if !meta.is_dir() {
        bail!(
            "{} exists and is not a folder: rtsim will not replace it; choose another --out (a new or \
             empty folder, or a report folder rtsim wrote)",
            dir.display()
        );
    }
    if dir.join(MARKER).is_file() {
        return Ok(Existing::RtsimFolder);
    }
    let mut entries =
        fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    if entries.next().is_none() {
        return Ok(Existing::EmptyFolder);
    }
    bail!(
        "{} is a folder rtsim did not write (it has no {MARKER} file): rtsim will not replace its \
         contents; choose a new or empty folder for --out",
        dir.display()
    )
}

/// The folder holding `dir` and `dir`'s last component.
fn parent_and_name(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = dir
        .file_name()
        .with_context(|| format!("`{}` does not name a folder", dir.display()))?
        .to_string_lossy()
        .into_owned();
    Ok((parent, name))
}

/// A scratch path beside the report (`.<name>.partial`, `.<name>.old`): free, or a leftover of an
/// earlier rtsim run (marked) which is removed. Anything else there is refused, not removed.
fn scratch(parent: &Path, name: &str, what: &str) -> anyhow::Result<PathBuf> {
    let path = parent.join(format!(".{name}.{what}"));
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(path),
        Ok(meta) if meta.is_dir() && path.join(MARKER).is_file() => {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove the leftover {}", path.display()))?;
            Ok(path)
        }
        Ok(_) => bail!(
            "cannot write the report: {} is in the way and rtsim did not write it (move it away)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", path.display())),
    }
}

/// Before any simulation: refuses an output place rtsim must not write over, and proves it writable
/// (by creating and removing the staging folder), so that a bad `--out` fails at once.
pub fn check(dir: &Path) -> anyhow::Result<()> {
    let state = existing(dir)?;
    let (parent, name) = parent_and_name(dir)?;
    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    let staging = scratch(&parent, &name, "partial")?;
    scratch(&parent, &name, "old")?;
    let probe = || -> std::io::Result<()> {
        fs::create_dir(&staging)?;
        fs::write(staging.join(MARKER), MARKER_TEXT)?;
        fs::remove_dir_all(&staging)
    };
    probe().with_context(|| format!("cannot write the report to {}", dir.display()))?;
    if state == Existing::EmptyFolder {
        let inside = dir.join(MARKER);
        (|| -> std::io::Result<()> {
            fs::write(&inside, MARKER_TEXT)?;
            fs::remove_file(&inside)
        })()
        .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    }
    Ok(())
}

/// Before any simulation, for a single file `name` that will be written into the folder `dir` (a
/// shard): `dir` is a folder or can be made one, and a file can be written there.
pub fn check_file_place(dir: &Path, name: &str) -> anyhow::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(dir) {
        if !meta.is_dir() && !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
            bail!(
                "{} exists and is not a folder: rtsim will not replace it; choose another --out",
                dir.display()
            );
        }
    }
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    let probe = dir.join(format!(".{name}.probe"));
    if probe.exists() {
        bail!(
            "cannot write {name}: {} is in the way and rtsim did not write it (move it away)",
            probe.display()
        );
    }
    (|| -> std::io::Result<()> {
        fs::write(&probe, b"")?;
        fs::remove_file(&probe)
    })()
    .with_context(|| format!("cannot write {name} into {}", dir.display()))
}

/// Writes `files` (paths inside the folder, `/`-separated) and the marker into a fresh folder beside
/// `dir`, then swaps it into place; on any failure `dir` is left as it was.
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let state = existing(dir)?;
    let (parent, name) = parent_and_name(dir)?;
    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    let staging = scratch(&parent, &name, "partial")?;
    let retired = scratch(&parent, &name, "old")?;
    let result = (|| -> anyhow::Result<()> {
        fs::create_dir(&staging)?;
        // The marker first: a leftover of a crash is then recognisably rtsim's own.
        fs::write(staging.join(MARKER), MARKER_TEXT)?;
        for (file, bytes) in files {
            let path = staging.join(file);
            if let Some(folder) = path.parent() {
                fs::create_dir_all(folder)?;
            }
            fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        match state {
            Existing::Nothing => fs::rename(&staging, dir)?,
            Existing::RtsimFolder => {
                fs::rename(dir, &retired)?;
                if let Err(e) = fs::rename(&staging, dir) {
                    // Put the previous report back before giving up.
                    let _ = fs::rename(&retired, dir);
                    return Err(e.into());
                }
                fs::remove_dir_all(&retired)?;
            }
            Existing::EmptyFolder => fill_in_place(&staging, dir)?,
        }
        Ok(())
    })();
    if result.is_err() && staging.join(MARKER).is_file() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.with_context(|| format!("cannot write the report to {}", dir.display()))
}

/// Moves the staged entries into the (empty, user-made) folder `dir`, keeping the folder itself;
/// on failure the entries already moved are taken out again.
fn fill_in_place(staging: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut names: Vec<_> = fs::read_dir(staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    // The marker last: the folder is claimed as rtsim's only once the report is whole.
    names.sort_by_key(|n| n == MARKER);
    let mut moved = Vec::new();
    for entry in &names {
        if let Err(e) = fs::rename(staging.join(entry), dir.join(entry)) {
            for back in &moved {
                let _ = fs::rename(dir.join(back), staging.join(back));
            }
            return Err(e.into());
        }
        moved.push(entry.clone());
    }
    fs::remove_dir(staging)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("rtsim-folder-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn a_file_in_the_way_is_refused_and_left_alone() {
        let root = tmp("file");
        let notes = root.join("notes.txt");
        fs::write(&notes, b"my notes").unwrap();
        let err = check(&notes).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
        let err = write_atomically(&notes, &[("a".into(), b"x".to_vec())]).unwrap_err();
        assert!(format!("{err:#}").contains("not a folder"));
        assert_eq!(fs::read(&notes).unwrap(), b"my notes");
        let mut names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec!["notes.txt"], "nothing renamed or added");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_folder_rtsim_did_not_write_is_refused_an_empty_one_is_filled_in_place() {
        let root = tmp("foreign");
        let docs = root.join("docs");
        fs::create_dir(&docs).unwrap();
        fs::write(docs.join("thesis.tex"), b"chapter 1").unwrap();
        let err = check(&docs).unwrap_err().to_string();
        assert!(err.contains("did not write"), "{err}");
        assert!(write_atomically(&docs, &[]).is_err());
        assert_eq!(fs::read(docs.join("thesis.tex")).unwrap(), b"chapter 1");

        let empty = root.join("empty");
        fs::create_dir(&empty).unwrap();
        check(&empty).unwrap();
        assert_eq!(
            fs::read_dir(&empty).unwrap().count(),
            0,
            "the probe leaves nothing"
        );
        write_atomically(&empty, &[("charts/a.svg".into(), b"<svg/>".to_vec())]).unwrap();
        assert!(empty.join(MARKER).is_file() && empty.join("charts/a.svg").is_file());
        // Now it is rtsim's: the next report replaces it whole.
        write_atomically(&empty, &[("b.txt".into(), b"two".to_vec())]).unwrap();
        assert!(!empty.join("charts").exists() && empty.join("b.txt").is_file());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn scratch_paths_rtsim_did_not_write_are_not_removed() {
        let root = tmp("scratch");
        let dir = root.join("r");
        fs::write(root.join(".r.old"), b"someone's file").unwrap();
        let err = check(&dir).unwrap_err().to_string();
        assert!(err.contains("in the way"), "{err}");
        assert_eq!(fs::read(root.join(".r.old")).unwrap(), b"someone's file");
        fs::remove_file(root.join(".r.old")).unwrap();
        // A marked leftover of a crashed run is rtsim's own and is cleared.
        fs::create_dir(root.join(".r.partial")).unwrap();
        fs::write(root.join(".r.partial").join(MARKER), MARKER_TEXT).unwrap();
        check(&dir).unwrap();
        write_atomically(&dir, &[("a.txt".into(), b"one".to_vec())]).unwrap();
        assert!(!root.join(".r.partial").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
