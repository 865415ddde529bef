//! `caap asset|policy|offer list|show|create|update|delete`: the management API's catalog resources
//! from the command line, as tables or (`--json`) as the API's JSON. Bodies are JSON, read from a file
//! or from standard input (`-f -`). Data-address secrets are shown as `***`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use caap_connector::catalog_files::{Kind, Live, refs};
use caap_connector::config::Config;
use clap::Subcommand;
use serde_json::Value;

use crate::api_client::Api;

/// Which running connector a command talks to (the same two options on every management command).
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The running connector's configuration (for its API address and admin token).
    #[arg(long, short, env = "CAAP_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// The management API's base URL, when it is not the config's api.bind.
    #[arg(long, global = true)]
    pub api_url: Option<String>,
}

/// The management commands of one resource kind.
#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCommand {
    /// List them all (every page), as a table or with --json as a JSON array.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one, with its ETag.
    Show {
        /// The id.
        id: String,
        /// Print the JSON body instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create one from a JSON body (as the management API takes it).
    Create {
        /// The JSON body: a file, or `-` for standard input.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Print the stored JSON body instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Replace one with a JSON body.
    Update {
        /// The id.
        id: String,
        /// The JSON body: a file, or `-` for standard input.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Only if it is still at this ETag (from `show`); else the update is refused.
        #[arg(long)]
        if_match: Option<String>,
        /// Print the stored JSON body instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Delete one (refused while an offer still uses it).
    Delete {
        /// The id.
        id: String,
    },
}

/// `caap policy …`: the offline ODRL commands and the management ones.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommands {
    #[command(flatten)]
    Offline(crate::commands::PolicyCommand),
    #[command(flatten)]
    Managed(ResourceCommand),
}

/// A management API answer: its JSON body and ETag.
#[derive(Debug)]
pub(crate) struct Reply {
    pub body: Value,
    pub etag: Option<String>,
}

/// One management API call; a failure names the status, the API's detail and each field error.
pub(crate) async fn call(
    config: &Config,
    api: &Api,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> anyhow::Result<Reply> {
    let mut req = api.request(config, method, path).await?;
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(etag) = if_match {
        req = req.header(reqwest::header::IF_MATCH, etag);
    }
    let url = format!("{}{path}", api.base(config));
    let res = req.send().await.with_context(|| {
        format!("cannot reach the connector's management API at {url}; is `caap serve` running?")
    })?;
    let status = res.status();
    let etag = res
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let mut detail = body
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| text.clone());
        for e in body
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            detail.push_str(&format!(
                "\n  {}: {}",
                e["pointer"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            ));
        }
        if api.uses_oidc() && status == reqwest::StatusCode::UNAUTHORIZED {
            detail.push_str(
                " (the connector refused the access token from --token-url: does --audience name its \
                 api.oidc.audience, and does it trust that provider?)",
            );
        }
        bail!("{status}: {detail}");
    }
    Ok(Reply { body, etag })
}

/// Every document of `kind` (all pages).
pub(crate) async fn list_all(config: &Config, api: &Api, kind: Kind) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{}?limit=100", kind.collection());
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>());
        }
        let page = call(config, api, reqwest::Method::GET, &path, None, None).await?;
        items.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

/// Everything the connector publishes.
pub(crate) async fn live(config: &Config, api: &Api) -> anyhow::Result<Live> {
    let mut live = Live::new();
    for kind in Kind::ALL {
        for body in list_all(config, api, kind).await? {
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            live.insert((kind, id), body);
        }
    }
    Ok(live)
}

/// The API path of one document.
pub(crate) fn item_path(kind: Kind, id: &str) -> String {
    format!(
        "{}/{}",
        kind.collection(),
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

fn read_body(file: &Path) -> anyhow::Result<Value> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}: not valid JSON: {e}",
            if file == Path::new("-") {
                "<stdin>".into()
            } else {
                file.display().to_string()
            },
            e.line()
        )
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn row(kind: Kind, body: &Value) -> Vec<String> {
    match kind {
        Kind::Asset => vec![
            text(&body["id"]),
            text(&body["title"]),
            text(&body["dataModel"]),
            text(&body["dataAddress"]["type"]),
        ],
        Kind::Policy => vec![text(&body["id"]), text(&body["description"])],
        Kind::Offer => vec![
            text(&body["id"]),
            text(&body["assets"]),
            text(&body["accessPolicy"]),
            text(&body["contractPolicy"]),
            body["approval"].as_str().unwrap_or("automatic").to_owned(),
        ],
    }
}

fn header(kind: Kind) -> Vec<String> {
    let h: &[&str] = match kind {
        Kind::Asset => &["ID", "TITLE", "DATA MODEL", "SOURCE"],
        Kind::Policy => &["ID", "DESCRIPTION"],
        Kind::Offer => &[
            "ID",
            "ASSETS",
            "ACCESS POLICY",
            "CONTRACT POLICY",
            "APPROVAL",
        ],
    };
    h.iter().map(|s| (*s).to_owned()).collect()
}

/// Rows as aligned columns (the last column is not padded).
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let last = r.len().saturating_sub(1);
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn show(kind: Kind, body: &Value, etag: Option<&str>) -> String {
    let mut rows = Vec::new();
    if let Value::Object(map) = body {
        for (k, v) in map {
            let shown = match (k.as_str(), v) {
                ("dataAddress" | "personalData" | "policy", Value::Object(_)) => v.to_string(),
                _ => text(v),
            };
            rows.push(vec![k.clone(), shown]);
        }
    }
    if let Some(e) = etag {
        rows.push(vec!["etag".into(), e.to_owned()]);
    }
    let mut out = table(&rows);
    if kind == Kind::Policy
        && let Ok(p) = caap_policy::parse_policy(&body["policy"])
    {
        out.push_str(&format!("\n{}\n", p.describe()));
    }
    out
}

/// Runs one resource command.
pub(crate) async fn run(
    kind: Kind,
    command: ResourceCommand,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let config = crate::load(config.as_deref())?;
    let one = |id: &str| item_path(kind, id);
    let print_one = |reply: &Reply, json: bool, verb: &str| -> anyhow::Result<()> {
        let body = refs::redact(&reply.body);
        if json {
            println!("{}", serde_json::to_string_pretty(&body)?);
        } else {
            println!(
                "caap: {verb} {} {} (etag {})",
                kind.name(),
                text(&body["id"]),
                reply.etag.as_deref().unwrap_or("-")
            );
        }
        Ok(())
    };
    match command {
        ResourceCommand::List { json } => {
            let items: Vec<Value> = list_all(&config, &api, kind)
                .await?
                .iter()
                .map(refs::redact)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                let mut rows = vec![header(kind)];
                rows.extend(items.iter().map(|b| row(kind, b)));
                print!("{}", table(&rows));
            }
        }
        ResourceCommand::Show { id, json } => {
            let reply = call(&config, &api, reqwest::Method::GET, &one(&id), None, None).await?;
            let body = refs::redact(&reply.body);
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", show(kind, &body, reply.etag.as_deref()));
            }
        }
        ResourceCommand::Create { file, json } => {
            let body = read_body(&file)?;
            let reply = call(
                &config,
                &api,
                reqwest::Method::POST,
                kind.collection(),
                Some(&body),
                None,
            )
            .await?;
            print_one(&reply, json, "created")?;
        }
        ResourceCommand::Update {
            id,
            file,
            if_match,
            json,
        } => {
            let body = read_body(&file)?;
            let etag = if_match.map(|e| {
                if e.starts_with('"') || e.starts_with("W/") {
                    e
                } else {
                    format!("\"{e}\"")
                }
            });
            let reply = call(
                &config,
                &api,
                reqwest::Method::PUT,
                &one(&id),
                Some(&body),
                etag.as_deref(),
            )
            .await?;
            print_one(&reply, json, "updated")?;
        }
        ResourceCommand::Delete { id } => {
            call(
                &config,
                &api,
                reqwest::Method::DELETE,
                &one(&id),
                None,
                None,
            )
            .await?;
            println!("caap: deleted {} {id}", kind.name());
        }
    }
    Ok(())
}
