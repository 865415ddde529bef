//! `caap negotiate`, `caap negotiation …`, `caap agreements` and `caap ledger …`: the command-line side of
//! contract negotiations and the transaction ledger.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api_client::Api;
use crate::{api_call, load};

/// `caap negotiation …`.
#[derive(Debug, Subcommand)]
pub enum NegotiationCommand {
    /// List negotiations (newest state of each).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one negotiation: state, what it waits for, last error, retries, history.
    Show {
        /// The negotiation id (this connector's pid).
        id: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request that waits for approval (provider).
    Approve {
        /// The negotiation id.
        id: String,
    },
    /// Reject a request that waits for approval (provider).
    Reject {
        /// The negotiation id.
        id: String,
        /// Why (sent to the consumer).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Accept the provider's offer (consumer).
    Accept {
        /// The negotiation id.
        id: String,
    },
    /// Terminate (either side).
    Terminate {
        /// The negotiation id.
        id: String,
        /// Why (sent to the counterparty).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `caap policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a policy against a request and a state of the world; prints the compliance report (JSON-LD,
    /// W3C ODRL formal-semantics / FORCE compliance-report vocabulary).
    Evaluate {
        /// The ODRL policy (JSON-LD or Turtle).
        #[arg(long)]
        policy: PathBuf,
        /// The evaluation request (who asks for which action on which target, and when).
        #[arg(long)]
        request: PathBuf,
        /// The state of the world (current time, counters, duty states, claims); may be left out when the
        /// request carries the time.
        #[arg(long)]
        state: Option<PathBuf>,
        /// `jsonld`, `turtle` or `detect` (per file, from its first character).
        #[arg(long, default_value = "detect")]
        format: String,
    },
    /// Print a policy in plain language.
    Explain {
        /// The ODRL policy (JSON-LD or Turtle).
        file: PathBuf,
        /// `jsonld`, `turtle` or `detect`.
        #[arg(long, default_value = "detect")]
        format: String,
    },
}

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} file {}: {e}", path.display()))
}

/// `caap policy …` (offline: no connector needed).
pub fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    let format_of = |f: &str| -> anyhow::Result<caap_policy::InputFormat> {
        f.parse()
            .map_err(|_| anyhow::anyhow!("--format `{f}`: use jsonld, turtle or detect"))
    };
    match command {
        PolicyCommand::Evaluate {
            policy,
            request,
            state,
            format,
        } => {
            let format = format_of(&format)?;
            let state = match state {
                Some(p) => read(&p, "state of the world")?,
                None => String::new(),
            };
            let report = caap_policy::evaluate_documents(
                &read(&policy, "policy")?,
                &read(&request, "request")?,
                &state,
                format,
            )?;
            println!("{}", serde_json::to_string_pretty(&report.to_json_ld())?);
        }
        PolicyCommand::Explain { file, format } => {
            let policy = caap_policy::read_policy(&read(&file, "policy")?, format_of(&format)?)?;
            println!("{}", policy.describe());
        }
    }
    Ok(())
}

/// `caap ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check the whole chain (hashes, links, agreement signatures) straight from the database; exits non-zero
    /// and names the first bad entry if anything was changed.
    Verify,
    /// Print the ledger as JSON lines.
    Export {
        /// Entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

fn short(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("-").to_owned()
}

fn print_negotiation(n: &Value) {
    println!("negotiation {}", short(n, "id"));
    println!("  role            {}", short(n, "role"));
    println!(
        "  counterparty    {} at {}",
        short(n, "counterPartyId"),
        short(n, "counterPartyAddress")
    );
    println!(
        "  offer           {} on dataset {}",
        short(n, "offerId"),
        short(n, "datasetId")
    );
    println!(
        "  state           {}",
        n.get("state")
            .and_then(Value::as_str)
            .unwrap_or("(not yet acknowledged)")
    );
    if let Some(p) = n.get("pending").and_then(Value::as_str) {
        println!(
            "  sending         {p} (attempt {}, next at {})",
            n["retryCount"].as_u64().unwrap_or(0) + 1,
            short(n, "nextAttemptAt")
        );
    }
    if let Some(a) = n.get("awaiting").and_then(Value::as_str) {
        println!("  waiting for     {a}");
    }
    if let Some(e) = n.get("lastError").and_then(Value::as_str) {
        println!("  last error      {e}");
    }
    if let Some(a) = n.get("agreementId").and_then(Value::as_str) {
        println!("  agreement       {a}");
    }
    if let Some(t) = n.get("termination") {
        println!(
            "  terminated by   {} ({}): {}",
            short(t, "by"),
            short(t, "code"),
            short(t, "reason")
        );
    }
    if let Some(h) = n.get("history").and_then(Value::as_array) {
        println!("  history");
        for item in h {
            println!(
                "    {}  {:<8} {}",
                short(item, "at"),
                short(item, "by"),
                short(item, "what")
            );
        }
    }
}

/// `caap negotiate --provider URL --offer ID [--wait]`.
pub async fn negotiate(
    config: Option<PathBuf>,
    api: Api,
    provider: String,
    offer: String,
    wait: bool,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let api = &api;
    println!("caap: asking {provider} for offer {offer}…");
    let n = api_call(
        &config,
        api,
        reqwest::Method::POST,
        "/api/v1/negotiations",
        Some(json!({"counterPartyAddress": provider, "offerId": offer})),
    )
    .await?;
    let id = short(&n, "id");
    println!(
        "caap: negotiation {id} started with {} on dataset {}",
        short(&n, "counterPartyId"),
        short(&n, "datasetId")
    );
    if !wait {
        println!("follow it with: caap negotiation show {id}");
        return Ok(());
    }
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let n = api_call(
            &config,
            api,
            reqwest::Method::GET,
            &format!("/api/v1/negotiations/{id}"),
            None,
        )
        .await?;
        let state = n.get("state").and_then(Value::as_str).unwrap_or("STARTING");
        let mut line = format!("  {:>6} ms  {state}", started.elapsed().as_millis());
        if let Some(p) = n.get("pending").and_then(Value::as_str) {
            line.push_str(&format!("  (sending {p})"));
        }
        if let Some(a) = n.get("awaiting").and_then(Value::as_str) {
            line.push_str(&format!("  (waiting for {a})"));
        }
        if let Some(e) = n.get("lastError").and_then(Value::as_str) {
            line.push_str(&format!(
                "  retry {}: {e}",
                n["retryCount"].as_u64().unwrap_or(0)
            ));
        }
        let without_time = line
            .split_once("ms")
            .map(|x| x.1.to_owned())
            .unwrap_or_default();
        if without_time != last_line {
            println!("{line}");
            last_line = without_time;
        }
        match state {
            "FINALIZED" => {
                println!("caap: FINALIZED; agreement {}", short(&n, "agreementId"));
                return Ok(());
            }
            "TERMINATED" => {
                let t = &n["termination"];
                bail!(
                    "the negotiation was TERMINATED by the {}: {} (code {})",
                    short(t, "by"),
                    short(t, "reason"),
                    short(t, "code")
                );
            }
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(timeout_secs) {
            bail!(
                "still {state} after {timeout_secs} s; it goes on in the background: caap negotiation show {id}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `caap negotiation …`.
pub async fn negotiation(
    command: NegotiationCommand,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let api = &api;
    let step = |id: &str, step: &str, body: Option<Value>| {
        let path = format!("/api/v1/negotiations/{id}/{step}");
        let config = config.clone();
        async move { api_call(&config, api, reqwest::Method::POST, &path, body).await }
    };
    match command {
        NegotiationCommand::List { json } => {
            let r = api_call(
                &config,
                api,
                reqwest::Method::GET,
                "/api/v1/negotiations?limit=500",
                None,
            )
            .await?;
            let items = r["items"].as_array().cloned().unwrap_or_default();
            if json {
                return print_json(&Value::Array(items));
            }
            println!("{} negotiation(s)", items.len());
            for n in items {
                println!(
                    "  {}  {:<8} {:<10} {:<10} {}  {}",
                    short(&n, "id"),
                    short(&n, "role"),
                    n.get("state").and_then(Value::as_str).unwrap_or("-"),
                    n.get("pending")
                        .and_then(Value::as_str)
                        .map(|p| format!("→{p}"))
                        .or_else(|| n
                            .get("awaiting")
                            .and_then(Value::as_str)
                            .map(|a| format!("⏸{a}")))
                        .unwrap_or_default(),
                    short(&n, "datasetId"),
                    short(&n, "counterPartyId")
                );
            }
        }
        NegotiationCommand::Show { id, json } => {
            let n = api_call(
                &config,
                api,
                reqwest::Method::GET,
                &format!("/api/v1/negotiations/{id}"),
                None,
            )
            .await?;
            if json {
                return print_json(&n);
            }
            print_negotiation(&n);
        }
        NegotiationCommand::Approve { id } => print_negotiation(&step(&id, "approve", None).await?),
        NegotiationCommand::Accept { id } => print_negotiation(&step(&id, "accept", None).await?),
        NegotiationCommand::Reject { id, reason } => {
            print_negotiation(&step(&id, "reject", Some(json!({"reason": reason}))).await?)
        }
        NegotiationCommand::Terminate { id, reason } => {
            print_negotiation(&step(&id, "terminate", Some(json!({"reason": reason}))).await?)
        }
    }
    Ok(())
}

/// `--json`: the API's JSON, pretty-printed.
fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `caap agreements`.
pub async fn agreements(config: Option<PathBuf>, api: Api, json: bool) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let r = api_call(
        &config,
        &api,
        reqwest::Method::GET,
        "/api/v1/agreements?limit=500",
        None,
    )
    .await?;
    let items = r["items"].as_array().cloned().unwrap_or_default();
    if json {
        return print_json(&Value::Array(items));
    }
    println!("{} agreement(s)", items.len());
    for a in items {
        println!(
            "  {}  {:<8} dataset {}  provider {}  consumer {}  signed {}",
            short(&a, "id"),
            short(&a, "role"),
            short(&a, "datasetId"),
            short(&a, "providerId"),
            short(&a, "consumerId"),
            if a["body"]["jws"].is_string() {
                "yes"
            } else {
                "no"
            }
        );
    }
    Ok(())
}

/// What `caap ledger verify` checks the signed heads with: the connector's key (and its retired ones) and
/// the head file in its data directory.
fn head_checks(
    config: &caap_connector::config::Config,
) -> anyhow::Result<caap_connector::ledger::HeadChecks> {
    let key_path = config.key_path();
    let key = caap_identity::keys::ParticipantKey::from_jwk_json(
        &std::fs::read_to_string(&key_path)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {}: {e}", key_path.display()))?,
    )?;
    let mut keys = vec![key.public_jwk()?];
    keys.extend(
        caap_connector::trust::dcp::read_retired_keys(config)?
            .into_iter()
            .map(|r| r.public_jwk),
    );
    Ok(caap_connector::ledger::HeadChecks {
        keys,
        file: Some(
            config
                .data_dir
                .join(caap_connector::store::ledger_head::HEAD_FILE),
        ),
    })
}

/// `caap ledger …`.
pub async fn ledger(command: LedgerCommand, config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let store = caap_connector::store::Store::open(
        &config.database_url(),
        1,
        std::sync::Arc::new(caap_connector::clock::SystemClock),
    )
    .await?;
    let result = match command {
        LedgerCommand::Verify => {
            match caap_connector::ledger::verify(&store, &head_checks(&config)?).await {
                Ok(v) => {
                    let at = |h: Option<u64>| {
                        h.map_or_else(|| "none".to_owned(), |s| format!("entry {s}"))
                    };
                    println!(
                        "caap: ledger OK: {} entries, {} agreement signature(s) verified, head {}; signed heads \
                     checked: database {}, file {}",
                        v.summary.entries,
                        v.summary.agreements_verified,
                        v.summary.last_hash,
                        at(v.database_head),
                        at(v.file_head)
                    );
                    Ok(())
                }
                Err(e) => Err(anyhow::anyhow!("ledger verification FAILED: {e}")),
            }
        }
        LedgerCommand::Export { after } => {
            let mut after = after;
            loop {
                let page = store.ledger(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for e in &page {
                    println!("{}", serde_json::to_string(e)?);
                }
            }
            Ok(())
        }
    };
    store.close().await?;
    result
}

/// `caap transfer …`.
#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Start a transfer under a finalized agreement (as consumer); with --out, wait for the data and write it
    /// to FILE (or `-` for standard output), showing progress.
    Start {
        /// The agreement id (see `caap agreements`).
        #[arg(long)]
        agreement: String,
        /// Push: have the provider send the data to this URL instead of pulling it.
        #[arg(long)]
        push: Option<String>,
        /// Push to this connector's own receiver (no URL needed).
        #[arg(long, conflicts_with = "push")]
        push_here: bool,
        /// Where to write the data (pull, or a push into this connector): a file or `-`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List transfers.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one transfer: state, what it is doing, last error, retries, bytes, history.
    Show {
        /// The transfer id (this connector's pid).
        id: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a running transfer (data stops at once).
    Suspend {
        /// The transfer id.
        id: String,
        /// Why (sent to the counterparty).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a suspended transfer.
    Resume {
        /// The transfer id.
        id: String,
    },
    /// Complete a transfer.
    Complete {
        /// The transfer id.
        id: String,
    },
    /// Terminate a transfer.
    Terminate {
        /// The transfer id.
        id: String,
        /// Why (sent to the counterparty).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ask the provider for a fresh pull token (consumer).
    Refresh {
        /// The transfer id.
        id: String,
    },
    /// Download a running transfer's data (consumer) to FILE or `-`; a FILE an interrupted download left
    /// is resumed from where it ended (where the provider serves ranges).
    Data {
        /// The transfer id.
        id: String,
        /// Where to write the data: a file or `-`.
        #[arg(long)]
        out: PathBuf,
        /// Start over instead of resuming what FILE already holds.
        #[arg(long)]
        restart: bool,
    },
}

fn print_transfer(t: &Value) {
    println!("transfer {}", short(t, "id"));
    println!("  role            {}", short(t, "role"));
    println!("  counterparty    {}", short(t, "counterPartyId"));
    println!(
        "  agreement       {} ({})",
        short(t, "agreementId"),
        short(t, "format")
    );
    println!(
        "  state           {}",
        t.get("state")
            .and_then(Value::as_str)
            .unwrap_or("(not yet acknowledged)")
    );
    println!("  bytes           {}", t["bytes"].as_u64().unwrap_or(0));
    if let Some(p) = t.get("pending").and_then(Value::as_str) {
        println!(
            "  doing           {p} (attempt {})",
            t["retryCount"].as_u64().unwrap_or(0) + 1
        );
    }
    if let Some(e) = t.get("lastError").and_then(Value::as_str) {
        println!("  last error      {e}");
    }
    if let Some(r) = t.get("termination") {
        println!(
            "  stopped by      {} ({}): {}",
            short(r, "by"),
            short(r, "code"),
            short(r, "reason")
        );
    }
    if let Some(h) = t.get("history").and_then(Value::as_array) {
        println!("  history");
        for item in h {
            println!(
                "    {}  {:<8} {}",
                short(item, "at"),
                short(item, "by"),
                short(item, "what")
            );
        }
    }
}

/// How often a download that broke off is resumed (with a `Range` request) before the CLI gives up.
const DOWNLOAD_RESUMES: u32 = 5;

/// Streams a transfer's data from the management API to a file or stdout, with progress on stderr. A file
/// download that breaks off is resumed from the bytes already written (a `Range` request; a provider that
/// cannot serve ranges sends the whole again, and the file is rewritten); with `resume`, so is a file an
/// earlier run left.
async fn download(
    config: &crate::Config,
    api: &Api,
    id: &str,
    out: &std::path::Path,
    resume: bool,
) -> anyhow::Result<()> {
    let to_stdout = out.as_os_str() == "-";
    let started = Instant::now();
    let mut have = if resume && !to_stdout {
        tokio::fs::metadata(out).await.map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    let mut resumes = 0;
    loop {
        match download_from(config, api, id, out, have).await {
            Ok(Downloaded::Done(total)) => {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "\rcaap: {total} bytes in {secs:.2} s{}",
                    if to_stdout {
                        String::new()
                    } else {
                        format!(" -> {}", out.display())
                    }
                );
                return Ok(());
            }
            Ok(Downloaded::BrokeOff(written, e)) if !to_stdout && resumes < DOWNLOAD_RESUMES => {
                resumes += 1;
                eprintln!("\rcaap: the download broke off after {written} bytes ({e}); resuming");
                have = written;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(resumes))).await;
            }
            Ok(Downloaded::BrokeOff(written, e)) => bail!(
                "the download broke off after {written} bytes: {e}{}",
                if to_stdout {
                    String::new()
                } else {
                    format!(
                        "; resume it with: caap transfer data {id} --out {}",
                        out.display()
                    )
                }
            ),
            Err(e) => return Err(e),
        }
    }
}

/// How one request of a download ended.
enum Downloaded {
    /// Everything is written: the file's length.
    Done(u64),
    /// The stream broke off: the bytes in the file, and why.
    BrokeOff(u64, String),
}

/// One request of a download, from byte `have` on (a file already holding `have` bytes).
async fn download_from(
    config: &crate::Config,
    api: &Api,
    id: &str,
    out: &std::path::Path,
    have: u64,
) -> anyhow::Result<Downloaded> {
    use std::io::Write;
    use tokio::io::AsyncWriteExt;
    let mut req = api
        .request(
            config,
            reqwest::Method::GET,
            &format!("/api/v1/transfers/{id}/data"),
        )
        .await?;
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let res = req.send().await?;
    if res.status() == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // Nothing after the bytes the file holds: it is complete.
        return Ok(Downloaded::Done(have));
    }
    if !res.status().is_success() {
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        bail!(
            "{status}: {}",
            body.get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail")
        );
    }
    // 206: the rest, appended; 200: the whole (the provider serves no ranges), written anew.
    let continued = res.status() == reqwest::StatusCode::PARTIAL_CONTENT
        && res
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|first| first.parse::<u64>().ok())
            == Some(have);
    let mut done = if continued { have } else { 0 };
    let total = res.content_length().map(|l| l + done);
    let to_stdout = out.as_os_str() == "-";
    let mut file = if to_stdout {
        None
    } else if continued {
        Some(tokio::fs::OpenOptions::new().append(true).open(out).await?)
    } else {
        Some(tokio::fs::File::create(out).await?)
    };
    let mut stdout = std::io::stdout();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut stream = res.bytes_stream();
    let mut broke_off = None;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                broke_off = Some(e.to_string());
                break;
            }
        };
        done += chunk.len() as u64;
        match &mut file {
            Some(f) => f.write_all(&chunk).await?,
            None => stdout.write_all(&chunk)?,
        }
        if last_report.elapsed() > Duration::from_millis(500) {
            last_report = Instant::now();
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001) / 1_048_576.0;
            match total {
                Some(t) if t > 0 => eprint!(
                    "\r  {:>6.1} % of {} MiB  {rate:>7.1} MiB/s",
                    done as f64 * 100.0 / t as f64,
                    t / 1_048_576
                ),
                _ => eprint!("\r  {} MiB  {rate:>7.1} MiB/s", done / 1_048_576),
            }
        }
    }
    if let Some(f) = &mut file {
        f.flush().await?;
    }
    Ok(match broke_off {
        Some(e) => Downloaded::BrokeOff(done, e),
        None => Downloaded::Done(done),
    })
}

/// `caap transfer …`.
pub async fn transfer(
    command: TransferCommand,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let api = &api;
    let step = |id: &str, step: &str, body: Option<Value>| {
        let path = format!("/api/v1/transfers/{id}/{step}");
        let config = config.clone();
        async move { api_call(&config, api, reqwest::Method::POST, &path, body).await }
    };
    match command {
        TransferCommand::Start {
            agreement,
            push,
            push_here,
            out,
        } => {
            let mut body = json!({"agreementId": agreement});
            if push.is_some() || push_here {
                body["format"] = json!("HttpData-PUSH");
            }
            if let Some(url) = push {
                body["pushTo"] = json!(url);
            }
            let t = api_call(
                &config,
                api,
                reqwest::Method::POST,
                "/api/v1/transfers",
                Some(body),
            )
            .await?;
            let id = short(&t, "id");
            eprintln!(
                "caap: transfer {id} requested from {}",
                short(&t, "counterPartyId")
            );
            let Some(out) = out else {
                println!("{id}");
                return Ok(());
            };
            let started = Instant::now();
            let ready = if push_here { "COMPLETED" } else { "STARTED" };
            loop {
                let t = api_call(
                    &config,
                    api,
                    reqwest::Method::GET,
                    &format!("/api/v1/transfers/{id}"),
                    None,
                )
                .await?;
                match t.get("state").and_then(Value::as_str) {
                    Some(s) if s == ready => break,
                    Some("TERMINATED") => bail!(
                        "the transfer was TERMINATED: {}",
                        short(&t["termination"], "reason")
                    ),
                    _ if started.elapsed() > Duration::from_secs(120) => {
                        bail!("not {ready} after 120 s: caap transfer show {id}")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            download(&config, api, &id, &out, false).await?;
        }
        TransferCommand::List { json } => {
            let r = api_call(
                &config,
                api,
                reqwest::Method::GET,
                "/api/v1/transfers?limit=500",
                None,
            )
            .await?;
            let items = r["items"].as_array().cloned().unwrap_or_default();
            if json {
                return print_json(&Value::Array(items));
            }
            println!("{} transfer(s)", items.len());
            for t in items {
                println!(
                    "  {}  {:<8} {:<10} {:<14} {:>12} B  agreement {}",
                    short(&t, "id"),
                    short(&t, "role"),
                    t.get("state").and_then(Value::as_str).unwrap_or("-"),
                    short(&t, "format"),
                    t["bytes"].as_u64().unwrap_or(0),
                    short(&t, "agreementId")
                );
            }
        }
        TransferCommand::Show { id, json } => {
            let t = api_call(
                &config,
                api,
                reqwest::Method::GET,
                &format!("/api/v1/transfers/{id}"),
                None,
            )
            .await?;
            if json {
                return print_json(&t);
            }
            print_transfer(&t);
        }
        TransferCommand::Suspend { id, reason } => {
            print_transfer(&step(&id, "suspend", Some(json!({"reason": reason}))).await?)
        }
        TransferCommand::Resume { id } => print_transfer(&step(&id, "resume", None).await?),
        TransferCommand::Complete { id } => print_transfer(&step(&id, "complete", None).await?),
        TransferCommand::Terminate { id, reason } => {
            print_transfer(&step(&id, "terminate", Some(json!({"reason": reason}))).await?)
        }
        TransferCommand::Refresh { id } => print_transfer(&step(&id, "refresh", None).await?),
        TransferCommand::Data { id, out, restart } => {
            download(&config, api, &id, &out, !restart).await?;
        }
    }
    Ok(())
}
