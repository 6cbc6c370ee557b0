//! End to end: the real `rtsim` binary on small profiles, checking the report folder it writes.

mod common;
use common::files;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHARTS: [&str; 6] = [
    "latency-cdf",
    "latency-percentiles",
    "deliveries-over-time",
    "event-delay-over-time",
    "cost",
    "resilience",
];

/// A small profile: 2 scenarios × 4 transports, 30 simulated seconds, 5 clients.
const PROFILE: &str = r#"
name = "e2e"
description = "End-to-end test profile"
duration = "30s"
clients = 5

[[scenario]]
name = "steady"

[[scenario]]
name = "proxied"
proxy = { buffer_bytes = 4096 }
"#;

fn write_profile(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("profile.toml");
    fs::write(&path, text).unwrap();
    path
}

fn rtsim(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn simulate(profile: &Path, out: &Path) -> Output {
    rtsim(&[
        "simulate".as_ref(),
        profile.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ])
}

#[test]
fn the_report_folder_holds_charts_page_markdown_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), PROFILE);
    let out = tmp.path().join("report");
    let run = simulate(&profile, &out);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.stderr.is_empty(),
        "no progress output when stderr is not a terminal"
    );
    assert!(!run.stdout.contains(&0x1b), "no escape codes on stdout");

    let page = fs::read_to_string(out.join("index.html")).unwrap();
    let markdown = fs::read_to_string(out.join("report.md")).unwrap();
    for chart in CHARTS {
        let svg = fs::read_to_string(out.join(format!("charts/{chart}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}.svg is an SVG"
        );
        assert!(svg.len() > 2_000, "{chart}.svg is not empty");
        let png = fs::read(out.join(format!("charts/{chart}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{chart}.png is a PNG"
        );
        assert!(png.len() > 10_000, "{chart}.png is not empty");
        assert!(
            page.contains(&format!("charts/{chart}.svg")),
            "index.html shows {chart}"
        );
        assert!(
            page.contains(&format!("charts/{chart}.png")),
            "index.html links {chart}.png"
        );
        assert!(
            markdown.contains(&format!("charts/{chart}.png")),
            "report.md shows {chart}"
        );
    }
    assert!(page.contains("What this means") && page.contains("--seed 1"));

    let runs = fs::read_to_string(out.join("runs.csv")).unwrap();
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 2 * 4,
        "a header and one row per scenario × transport"
    );
    assert!(lines[1].starts_with("steady,polling,"));
    assert!(lines[8].starts_with("proxied,websocket,"));
    let series = fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(
        series.lines().count() > 8 * 29,
        "one row per run and simulated second"
    );
    for name in [
        "summary.json",
        "events.csv",
        "latency-cdf.csv",
        "faults.csv",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }
}

#[test]
fn the_same_profile_and_seed_give_byte_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), &PROFILE.replace("clients = 5", "clients = 3"));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert!(simulate(&profile, &a).status.success());
    assert!(simulate(&profile, &b).status.success());
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(
        fa.len(),
        5 + 12 + 2 + 1 + 1, // data, charts, page and markdown, faults.csv, the .rtsim-report marker
        "{:?}",
        fa.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name_a, bytes_a), (name_b, bytes_b)) in fa.iter().zip(&fb) {
        assert_eq!(name_a, name_b);
        assert!(
            bytes_a == bytes_b,
            "{name_a} differs between two identical runs"
        );
    }
}

#[test]
fn a_failed_run_keeps_the_previous_report() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), &PROFILE.replace("clients = 5", "clients = 2"));
    let out = tmp.path().join("r");
    assert!(simulate(&profile, &out).status.success());
    let before = files(&out);

    // A run that cannot write its report: something that is not a folder blocks the staging place.
    fs::write(tmp.path().join(".r.partial"), b"in the way").unwrap();
    let failed = simulate(&profile, &out);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("cannot"),
        "{failed:?}"
    );
    assert_eq!(
        files(&out),
        before,
        "the previous report is intact after a failed write"
    );
    fs::remove_file(tmp.path().join(".r.partial")).unwrap();

    // A run whose profile is refused.
    let broken = write_profile(tmp.path(), &PROFILE.replace("clients = 5", "clients = 0"));
    let failed = simulate(&broken, &out);
    assert_eq!(failed.status.code(), Some(2));
    assert_eq!(
        files(&out),
        before,
        "the previous report is intact after a refused profile"
    );
}

#[test]
fn a_report_name_cannot_escape_its_parent_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(
        tmp.path(),
        &PROFILE.replace("name = \"e2e\"", "name = \"../x\""),
    );
    let run = rtsim(&["simulate".as_ref(), profile.as_os_str(), "--quiet".as_ref()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("cannot name a report folder"));
    assert!(!tmp.path().join("x").exists() && !Path::new("x").exists());
}

/// A profile whose simulation would take minutes: a refusal that comes before it is visibly immediate,
/// and one that came after it would hang the test.
const SLOW_PROFILE: &str = r#"
name = "slow"
duration = "2h"
clients = 3000
"#;

#[test]
fn out_never_replaces_a_file_or_a_folder_rtsim_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), SLOW_PROFILE);
    let notes = tmp.path().join("notes.txt");
    fs::write(&notes, b"my notes").unwrap();
    let run = simulate(&profile, &notes);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("notes.txt exists and is not a folder"),
        "{stderr}"
    );
    assert_eq!(fs::read(&notes).unwrap(), b"my notes");
    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["notes.txt", "profile.toml"],
        "nothing moved, nothing added"
    );

    let docs = tmp.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("thesis.tex"), b"chapter 1").unwrap();
    let run = simulate(&profile, &docs);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("did not write"));
    assert_eq!(
        files(&docs),
        vec![("thesis.tex".to_string(), b"chapter 1".to_vec())]
    );

    // The same refusals for sweeps.
    let sweep = rtsim(&[
        "sweep".as_ref(),
        profile.as_os_str(),
        "--vary".as_ref(),
        "clients=1,2".as_ref(),
        "--out".as_ref(),
        notes.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_eq!(sweep.status.code(), Some(2));
    assert_eq!(fs::read(&notes).unwrap(), b"my notes");
}

#[test]
fn a_report_folder_is_marked_and_replaced_only_because_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), &PROFILE.replace("clients = 5", "clients = 2"));
    let out = tmp.path().join("r");
    fs::create_dir(&out).unwrap();
    assert!(
        simulate(&profile, &out).status.success(),
        "an empty folder is filled"
    );
    assert!(out.join(".rtsim-report").is_file());
    fs::write(out.join("stale.txt"), b"from before").unwrap();
    assert!(simulate(&profile, &out).status.success());
    assert!(
        !out.join("stale.txt").exists(),
        "a report folder is replaced whole"
    );
}

/// Read-only: a tmpfs mounted `ro` (as root), else a folder without write permission. Under CI one of
/// them must work.
#[test]
fn an_unwritable_out_is_refused_before_the_first_run() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), SLOW_PROFILE);
    let place = tmp.path().join("ro");
    fs::create_dir(&place).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&place)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&place, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let writable = fs::write(place.join("probe"), b"").is_ok();
    if writable {
        let _ = fs::remove_file(place.join("probe"));
        let why = "neither a read-only tmpfs nor permission bits can make a read-only folder here";
        assert!(std::env::var("CI").is_err(), "{why}");
        eprintln!("SKIPPED an_unwritable_out_is_refused_before_the_first_run: {why}");
        return;
    }
    let run = simulate(&profile, &place.join("report"));
    if mounted {
        let _ = Command::new("umount").arg(&place).status();
    }
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot"), "{stderr}");
    assert!(stderr.contains("report"), "{stderr}");
}
