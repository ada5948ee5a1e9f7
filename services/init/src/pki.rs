//! The certs-directory subcommands: output only; every decision is bulwark-pki's.

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use bulwark_pki::{
    Error, Mode, Report, Settings,
    fs::ensure_dir,
    layout,
    lock::DirLock,
    manifest::{MANIFEST_FILE, Manifest},
    rotate::{self, Clock},
    verify::{Severity, verify_dir},
};
use time::format_description::well_known::Rfc3339;

pub fn generate(
    out: &Path,
    settings: &Settings,
    force: bool,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let mode = if force { Mode::Force } else { Mode::Missing };
    let report = bulwark_pki::generate(out, settings, mode, clock.now())?;
    print_report(out, &report);
    Ok(())
}

/// Replace the named items (and what depends on them). `jwt-key` is a direct switch through
/// the staged verbs (publish, switch, re-issue the tokens) under one hold of the lock, so the
/// old key stays published by the same rule as a rotation from the admin page. A key that
/// cannot be loaded is replaced the plain way: rotating is also how a damaged item is recovered.
pub fn rotate(
    dir: &Path,
    settings: &Settings,
    items: &[String],
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    settings.validate()?;
    // Unknown ids fail before anything is written.
    let known = layout::item_ids(settings);
    if let Some(unknown) = items.iter().find(|i| !known.contains(i)) {
        return Err(Error::UnknownItem(unknown.clone()).into());
    }
    ensure_dir(dir)?;
    let lock = DirLock::acquire(dir)?;
    let staged = items.iter().any(|i| i == layout::JWT_KEY_ID) && switchable(dir);
    let mut report = Report::default();
    let mut rest: Vec<String> = items.to_vec();
    if staged {
        rest.retain(|i| i != layout::JWT_KEY_ID);
        let prepared = rotate::jwt::prepare(&lock, settings, clock)?;
        let switched = rotate::jwt::activate(&lock, settings, &prepared, clock)?;
        let tokens = rotate::reissue::static_tokens(&lock, settings, clock)
            .context("the new JWT key signs, but re-issuing the static tokens failed; run `rotate system-token worker-token client-token` to retry")?;
        report.changes.push(bulwark_pki::Change {
            id: layout::JWT_KEY_ID.into(),
            reason: "rotated",
        });
        report.files_written.extend(
            [
                layout::JWT_PRIVATE,
                layout::JWT_PUBLIC,
                layout::JWKS,
                MANIFEST_FILE,
            ]
            .map(str::to_owned),
        );
        merge(&mut report, tokens);
        println!(
            "kid {} signs now; kid {} stays in {} until {}",
            switched.new_kid,
            switched.old_kid,
            layout::JWKS,
            switched.retire_after.format(&Rfc3339).unwrap_or_default()
        );
    }
    if !rest.is_empty() {
        merge(
            &mut report,
            rotate::reissue::items(&lock, settings, &rest, clock)?,
        );
    }
    print_report(dir, &report);
    Ok(())
}

/// Whether the staged switch applies: a loadable signing key recorded in the manifest.
fn switchable(dir: &Path) -> bool {
    let Ok(key) = rotate::jwt::current(dir) else {
        return false;
    };
    std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .and_then(|m| m.get(layout::JWT_KEY_ID).and_then(|e| e.kid.clone()))
        .is_some_and(|kid| kid == key.kid())
}

fn merge(into: &mut Report, from: Report) {
    into.changes.extend(from.changes);
    for f in from.files_written {
        if !into.files_written.contains(&f) {
            into.files_written.push(f);
        }
    }
}

pub fn revoke_jwt_key(dir: &Path, settings: &Settings, clock: &dyn Clock) -> anyhow::Result<()> {
    settings.validate()?;
    ensure_dir(dir)?;
    let lock = DirLock::acquire(dir)?;
    let r = rotate::jwt::revoke(&lock, settings, clock)?;
    print_report(dir, &r.report);
    println!(
        "kid {} signs now and is the only published key; revoked: {}",
        r.kid,
        if r.revoked.is_empty() {
            "-".to_owned()
        } else {
            r.revoked.join(", ")
        }
    );
    println!(
        "Temporal refuses the revoked kids after its JWKS refresh; a running control signs with the new key within its reload interval"
    );
    Ok(())
}

pub fn verify(dir: &Path, renew_at: f64, clock: &dyn Clock) -> ExitCode {
    let problems = verify_dir(dir, clock.now(), renew_at);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    for p in &problems {
        println!("{p}");
    }
    if errors == 0 {
        println!(
            "ok: {} is valid ({} warnings)",
            dir.display(),
            problems.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {errors} problems in {}", dir.display());
        ExitCode::FAILURE
    }
}

pub fn inspect(dir: &Path, json: bool, renew_at: f64, clock: &dyn Clock) -> anyhow::Result<()> {
    let now = clock.now();
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let mut rows: Vec<_> = manifest
        .items
        .iter()
        .map(|e| (e.status(now, renew_at), e.days_left(now), e))
        .collect();
    rows.sort_by_key(|(status, days, _)| (*status, days.unwrap_or(i64::MAX)));
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(status, days, e)| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["status"] = serde_json::to_value(status).unwrap_or_default();
                v["days_left"] = serde_json::to_value(days).unwrap_or_default();
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "items": items }))?
        );
        return Ok(());
    }
    println!(
        "{:<18} {:<16} {:<10} {:>9} {:>4}  {:<22} FINGERPRINT/KID",
        "ITEM", "KIND", "STATUS", "DAYS LEFT", "GEN", "NOT AFTER"
    );
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    for (status, days, e) in rows {
        let na = e
            .not_after
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "-".into());
        let days = days.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let id = e
            .kid
            .clone()
            .unwrap_or_else(|| e.fingerprint.chars().take(16).collect());
        println!(
            "{:<18} {:<16} {:<10} {:>9} {:>4}  {:<22} {}",
            e.id,
            name(serde_json::to_value(e.kind)),
            name(serde_json::to_value(status)),
            days,
            e.generation,
            na,
            id
        );
    }
    Ok(())
}

fn print_report(dir: &Path, report: &Report) {
    if report.changes.is_empty() {
        println!("{}: everything valid, nothing changed", dir.display());
    }
    for c in &report.changes {
        println!("{:<18} {}", c.id, c.reason);
    }
    if !report.files_written.is_empty() {
        println!(
            "wrote {} files in {}",
            report.files_written.len(),
            dir.display()
        );
    }
}
