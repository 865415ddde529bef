//! `caap apply` and `caap export`: a connector's catalog kept as files (see
//! `caap_connector::catalog_files`). `apply` checks every file first and writes nothing unless all of
//! it is valid; it then changes only what differs, through the management API, each update guarded by
//! the ETag it was planned from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use caap_connector::catalog_files::{self, Kind, Op};

use crate::api_client::Api;
use crate::resources::{call, item_path, live};

/// `caap apply` options.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// A catalog file, or a folder of them (`.toml`, sub-folders too).
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// Also delete the assets, policies and offers the files do not name.
    #[arg(long)]
    prune: bool,
    /// Print the plan (`+` create, `~` update, `-` delete) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Like --dry-run, and exit with status 3 when the plan is not empty (for CI review).
    #[arg(long)]
    check: bool,
}

/// `--check` found changes to make.
#[derive(Debug, thiserror::Error)]
#[error("the connector's catalog differs from the files ({0} change(s) to apply)")]
pub(crate) struct PendingChanges(pub usize);

fn report_problems(problems: &[catalog_files::Problem]) -> anyhow::Error {
    for p in problems {
        eprintln!("{p}");
    }
    anyhow::anyhow!(
        "{} problem(s) in the catalog files; nothing was applied",
        problems.len()
    )
}

/// `caap apply -f DIR|FILE`.
pub(crate) async fn apply(
    args: ApplyArgs,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let desired = catalog_files::load(&args.file).map_err(|p| report_problems(&p))?;
    let config = crate::load(config.as_deref())?;
    let live = live(&config, &api).await?;
    let plan = catalog_files::plan(&desired, &live, args.prune);
    if plan.is_empty() {
        println!(
            "caap: the connector's catalog matches {} ({} document(s)); nothing to change",
            args.file.display(),
            desired.entries.len()
        );
        return Ok(());
    }
    print!("{plan}");
    let (created, updated, deleted) = plan.counts();
    if args.dry_run || args.check {
        println!(
            "caap: plan: {created} to create, {updated} to update, {deleted} to delete (dry run; nothing changed)"
        );
        if args.check {
            return Err(PendingChanges(plan.changes.len()).into());
        }
        return Ok(());
    }
    // The bodies as written: references stay references; the connector resolves them in its data plane.
    let bodies: BTreeMap<(Kind, String), serde_json::Value> = plan
        .changes
        .iter()
        .filter(|c| c.op != Op::Delete)
        .filter_map(|c| {
            desired
                .get(c.kind, &c.id)
                .map(|e| ((c.kind, c.id.clone()), e.body.clone()))
        })
        .collect();
    for c in &plan.changes {
        let key = (c.kind, c.id.clone());
        let path = item_path(c.kind, &c.id);
        match &c.op {
            Op::Create => {
                call(
                    &config,
                    &api,
                    reqwest::Method::POST,
                    c.kind.collection(),
                    bodies.get(&key),
                    None,
                )
                .await
                .map_err(|e| e.context(format!("creating {} {}", c.kind.name(), c.id)))?;
            }
            Op::Update(_) => {
                let now = call(&config, &api, reqwest::Method::GET, &path, None, None).await?;
                if live.get(&key) != Some(&now.body) {
                    bail!(
                        "{} {} was changed by someone else since this plan was made; run caap apply again",
                        c.kind.name(),
                        c.id
                    );
                }
                call(
                    &config,
                    &api,
                    reqwest::Method::PUT,
                    &path,
                    bodies.get(&key),
                    now.etag.as_deref(),
                )
                .await
                .map_err(|e| e.context(format!("updating {} {}", c.kind.name(), c.id)))?;
            }
            Op::Delete => {
                call(&config, &api, reqwest::Method::DELETE, &path, None, None)
                    .await
                    .map_err(|e| e.context(format!("deleting {} {}", c.kind.name(), c.id)))?;
            }
        }
    }
    println!("caap: applied: {created} created, {updated} updated, {deleted} deleted");
    Ok(())
}

/// `caap export -o DIR`.
pub(crate) async fn export(
    out: PathBuf,
    force: bool,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let config = crate::load(config.as_deref())?;
    let live = live(&config, &api).await?;
    let (files, env) = catalog_files::export(&live, &config.participant.name)
        .map_err(|e| anyhow::anyhow!("cannot write the catalog as TOML: {e}"))?;
    for f in &files {
        let path = out.join(&f.path);
        if path.exists() && !force {
            bail!(
                "{} exists; export into an empty folder or pass --force to overwrite",
                path.display()
            );
        }
    }
    for f in &files {
        let path = out.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.text)?;
    }
    let count = |k: Kind| live.keys().filter(|(kind, _)| *kind == k).count();
    println!(
        "caap: wrote {} asset(s), {} policy(ies) and {} offer(s) to {}",
        count(Kind::Asset),
        count(Kind::Policy),
        count(Kind::Offer),
        out.display()
    );
    if !env.is_empty() {
        println!(
            "  secrets in data addresses are written as references; set these before `caap apply`: {}",
            env.join(", ")
        );
    }
    Ok(())
}
