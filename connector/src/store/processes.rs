//! Every kind of process in the store, written once: contract negotiations and transfer processes share their
//! write discipline. A write is guarded by the process's version and carries its ledger entries (and, when a
//! negotiation finalizes, its agreement) in the same transaction; the processor claims due work with a lease,
//! so several replicas on one PostgreSQL never send the same message twice.
//!
//! A kind is a table with the same columns but two of its own ([`Stored`]); the statements are built for
//! the table at hand.

use caap_contracts::Role;
use caap_contracts::ledger::NewEntry;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, Cond, Expr, ExprTrait, Order, Query, SelectStatement, SimpleExpr, UpdateStatement,
};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};

use super::negotiations::{AgreementRecord, append_ledger_in, insert_agreement_in};
use super::{Store, StoreError, from_millis, millis};

/// What else a process write brings along.
#[derive(Debug, Default)]
pub struct Effects {
    /// Ledger entries, appended in order.
    pub ledger: Vec<NewEntry>,
    /// An agreement to record (a negotiation at FINALIZED).
    pub agreement: Option<AgreementRecord>,
    /// Leave a processor's lease in place (an inbound message or a management step while a send may be in
    /// flight); the processor's own writes release it.
    pub keep_lease: bool,
}

/// A process row of any kind, the kind's own two columns as `a` and `b`.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Row {
    /// Our pid.
    pub id: String,
    /// `consumer` or `provider`.
    pub role: String,
    /// The provider's pid.
    pub provider_pid: Option<String>,
    /// The consumer's pid.
    pub consumer_pid: Option<String>,
    /// The counterparty.
    pub counterparty_id: String,
    /// Its address.
    pub counterparty_address: String,
    /// The protocol state.
    pub state: Option<String>,
    /// The kind's first own column.
    pub a: String,
    /// The kind's second own column.
    pub b: String,
    /// The documents and history, JSON.
    pub body: String,
    /// The step owed.
    pub pending: Option<String>,
    /// Why it is parked.
    pub awaiting: Option<String>,
    /// Failed attempts.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the step is due (ms).
    pub next_attempt_at: Option<i64>,
    /// Until when a processor holds it (ms).
    pub lease_until: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A kind of process the store keeps.
pub trait Stored: Sized + Clone {
    /// Its table.
    const TABLE: &'static str;
    /// Its own two columns, stored as [`Row::a`] and [`Row::b`].
    const COLUMNS: [&'static str; 2];
    /// The process as a row (lease columns aside).
    fn to_row(&self) -> Result<Row, StoreError>;
    /// The row as a process.
    fn from_row(row: Row) -> Result<Self, StoreError>;
    /// Its version (see [`Store::save`]).
    fn version(&self) -> i64;
}

/// The common columns, in [`Row`]'s order, the kind's own two left out.
const COMMON: [&str; 17] = [
    "id",
    "role",
    "provider_pid",
    "consumer_pid",
    "counterparty_id",
    "counterparty_address",
    "state",
    "body",
    "pending",
    "awaiting",
    "attempts",
    "last_error",
    "next_attempt_at",
    "lease_until",
    "created_at",
    "updated_at",
    "version",
];

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

fn select<P: Stored>() -> SelectStatement {
    let mut q = Query::select();
    q.from(Alias::new(P::TABLE));
    for c in COMMON {
        q.column(Alias::new(c));
    }
    q.expr_as(col(P::COLUMNS[0]), Alias::new("a"))
        .expr_as(col(P::COLUMNS[1]), Alias::new("b"));
    q
}

/// The values a write sets (every column but the lease's).
fn values<P: Stored>(row: &Row) -> Vec<(Alias, SimpleExpr)> {
    let v = |name: &str, value: SimpleExpr| (Alias::new(name), value);
    vec![
        v("id", row.id.clone().into()),
        v("role", row.role.clone().into()),
        v("provider_pid", row.provider_pid.clone().into()),
        v("consumer_pid", row.consumer_pid.clone().into()),
        v("counterparty_id", row.counterparty_id.clone().into()),
        v(
            "counterparty_address",
            row.counterparty_address.clone().into(),
        ),
        v("state", row.state.clone().into()),
        v(P::COLUMNS[0], row.a.clone().into()),
        v(P::COLUMNS[1], row.b.clone().into()),
        v("body", row.body.clone().into()),
        v("pending", row.pending.clone().into()),
        v("awaiting", row.awaiting.clone().into()),
        v("attempts", row.attempts.into()),
        v("last_error", row.last_error.clone().into()),
        v("next_attempt_at", row.next_attempt_at.into()),
        v("created_at", row.created_at.into()),
        v("updated_at", row.updated_at.into()),
        v("version", row.version.into()),
    ]
}

fn update<P: Stored>() -> UpdateStatement {
    let mut u = Query::update();
    u.table(Alias::new(P::TABLE));
    u
}

fn clear_lease(u: &mut UpdateStatement) {
    u.value(Alias::new("lease_owner"), Option::<String>::None)
        .value(Alias::new("lease_until"), Option::<i64>::None);
}

/// Due: a step owed, not parked.
fn owing(q: &mut SelectStatement) {
    q.and_where(col("pending").is_not_null())
        .and_where(col("awaiting").is_null());
}

/// Most times a write is retried when another replica appended to the ledger at the same moment.
pub(super) const LEDGER_RACE_RETRIES: usize = 24;

/// The pause before retry `attempt` of a write that lost a ledger race: a few random milliseconds, growing
/// with the attempt, so that writers that collided do not collide again in lockstep (a busy machine made
/// eight immediate retries run out).
pub(super) async fn ledger_race_pause(attempt: usize) {
    let cap = 1 + u64::try_from(attempt.min(8)).unwrap_or(8) * 2;
    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
        0..=cap,
    )))
    .await;
}

impl Store {
    async fn process_rows<P: Stored, S: StatementBuilder>(
        &self,
        q: &S,
    ) -> Result<Vec<P>, StoreError> {
        self.db
            .query_all(q)
            .await?
            .iter()
            .map(|r| P::from_row(Row::from_query_result(r, "")?))
            .collect()
    }

    /// One process by our pid.
    pub async fn process<P: Stored>(&self, id: &str) -> Result<Option<P>, StoreError> {
        let mut q = select::<P>();
        q.and_where(col("id").eq(id));
        Ok(self.process_rows(&q).await?.into_iter().next())
    }

    /// The processes that meet `condition` (on the table's columns).
    pub async fn processes_where<P: Stored>(
        &self,
        condition: SimpleExpr,
    ) -> Result<Vec<P>, StoreError> {
        let mut q = select::<P>();
        q.and_where(condition);
        self.process_rows(&q).await
    }

    /// The provider-side process a consumer started with `consumer_pid` (an initial request sent again).
    pub async fn process_by_consumer_pid<P: Stored>(
        &self,
        counterparty_id: &str,
        consumer_pid: &str,
    ) -> Result<Option<P>, StoreError> {
        let mut q = select::<P>();
        q.and_where(col("role").eq(Role::Provider.as_str()))
            .and_where(col("consumer_pid").eq(consumer_pid))
            .and_where(col("counterparty_id").eq(counterparty_id))
            .limit(1);
        Ok(self.process_rows(&q).await?.into_iter().next())
    }

    /// Processes ordered by id, after or before a cursor id.
    pub async fn processes<P: Stored>(
        &self,
        after: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<P>, StoreError> {
        let mut q = select::<P>();
        if let Some(a) = after {
            q.and_where(col("id").gt(a));
        }
        match before {
            Some(b) => q
                .and_where(col("id").lt(b))
                .order_by(Alias::new("id"), Order::Desc),
            None => q.order_by(Alias::new("id"), Order::Asc),
        };
        q.limit(limit);
        let mut rows = self.process_rows(&q).await?;
        if before.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Writes a process: inserts it when `expected_version` is `None`, else replaces it only if it is still
    /// at that version (`Conflict` otherwise). The version is bumped, the lease released (unless
    /// [`Effects::keep_lease`]), and the effects written in the same transaction. Returns the process as stored.
    pub async fn save<P: Stored>(
        &self,
        process: &P,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<P, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_save(process, expected_version, effects).await {
                Err(e)
                    if super::negotiations::is_unique_violation(&e)
                        && attempt < LEDGER_RACE_RETRIES =>
                {
                    attempt += 1;
                    ledger_race_pause(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn try_save<P: Stored>(
        &self,
        process: &P,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<P, StoreError> {
        let now = millis(self.clock.now());
        let mut row = process.to_row()?;
        row.updated_at = now;
        let mut txn = self.begin_write().await?;
        match expected_version {
            None => {
                row.created_at = now;
                row.version = 1;
                let values = values::<P>(&row);
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new(P::TABLE))
                    .columns(values.iter().map(|(c, _)| c.clone()))
                    .values_panic(values.into_iter().map(|(_, v)| v));
                txn.txn.execute(&insert).await?;
            }
            Some(v) => {
                row.version = v + 1;
                let mut u = update::<P>();
                u.values(values::<P>(&row))
                    .and_where(col("id").eq(row.id.clone()))
                    .and_where(col("version").eq(v));
                if !effects.keep_lease {
                    clear_lease(&mut u);
                }
                if txn.txn.execute(&u).await?.rows_affected() != 1 {
                    return Err(StoreError::Conflict(format!(
                        "{} {} changed meanwhile",
                        P::TABLE.trim_end_matches('s'),
                        row.id
                    )));
                }
            }
        }
        append_ledger_in(&mut txn, &effects.ledger).await?;
        if let Some(a) = &effects.agreement {
            insert_agreement_in(&txn.txn, a).await?;
        }
        txn.commit().await?;
        P::from_row(row)
    }

    /// Claims up to `limit` processes whose step is due, leasing each to `owner` until `lease_until`.
    /// A process leased by another live replica is skipped; a claim bumps the version, so a replica whose
    /// lease expired cannot write its outcome over a newer one.
    ///
    /// An owner is `<instance>/<run>`: the instance is the connector's stable identity (one per data
    /// directory, so one per replica) and the run one start of it. A lease an earlier run of the same instance
    /// held is taken over at once, without waiting for it to expire: that run is gone (a crash), and no other
    /// replica can hold this instance's name.
    pub async fn claim_due<P: Stored>(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<P>, StoreError> {
        let now = millis(self.clock.now());
        let mut q = select::<P>();
        owing(&mut q);
        let mut free = Cond::any()
            .add(col("lease_until").is_null())
            .add(col("lease_until").lt(now));
        if let Some((instance, _)) = owner.split_once('/') {
            free = free.add(
                Cond::all()
                    .add(col("lease_owner").like(format!("{instance}/%")))
                    .add(col("lease_owner").ne(owner)),
            );
        }
        q.and_where(col("next_attempt_at").lte(now))
            .cond_where(free)
            .order_by(Alias::new("next_attempt_at"), Order::Asc)
            .limit(limit);
        let candidates = self
            .db
            .query_all(&q)
            .await?
            .iter()
            .map(|r| Row::from_query_result(r, ""))
            .collect::<Result<Vec<_>, _>>()?;
        let mut claimed = Vec::with_capacity(candidates.len());
        if candidates.is_empty() {
            return Ok(claimed);
        }
        // One transaction for the whole batch: one commit instead of one per process.
        let txn = self.begin_write().await?;
        for mut row in candidates {
            let mut u = update::<P>();
            u.value(Alias::new("lease_owner"), owner)
                .value(Alias::new("lease_until"), millis(lease_until))
                .value(Alias::new("version"), row.version + 1)
                .and_where(col("id").eq(row.id.clone()))
                .and_where(col("version").eq(row.version));
            if txn.txn.execute(&u).await?.rows_affected() == 1 {
                row.version += 1;
                claimed.push(P::from_row(row)?);
            }
        }
        txn.commit().await?;
        Ok(claimed)
    }

    /// Gives up `owner`'s lease on a process (after a send whose outcome another write overtook).
    pub async fn release_lease<P: Stored>(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let mut u = update::<P>();
        clear_lease(&mut u);
        u.and_where(col("id").eq(id))
            .and_where(col("lease_owner").eq(owner));
        self.db.execute(&u).await?;
        Ok(())
    }

    /// Extends `owner`'s lease on a process (a long push renews it while it runs).
    pub async fn renew_lease<P: Stored>(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let mut u = update::<P>();
        u.value(Alias::new("lease_until"), millis(until))
            .and_where(col("id").eq(id))
            .and_where(col("lease_owner").eq(owner));
        Ok(self.db.execute(&u).await?.rows_affected() == 1)
    }

    /// When the earliest pending step is due (for the processor's sleep), if any.
    pub async fn next_due<P: Stored>(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut q = select::<P>();
        owing(&mut q);
        q.order_by(Alias::new("next_attempt_at"), Order::Asc)
            .limit(1);
        let row = self
            .db
            .query_one(&q)
            .await?
            .map(|r| Row::from_query_result(&r, ""))
            .transpose()?;
        Ok(row.and_then(|r| {
            let due = r.next_attempt_at?;
            Some(from_millis(Ord::max(due, r.lease_until.unwrap_or(0))))
        }))
    }
}

/// Parses a stored role.
pub(super) fn parse_role(s: &str) -> Result<Role, StoreError> {
    match s {
        "consumer" => Ok(Role::Consumer),
        "provider" => Ok(Role::Provider),
        other => Err(StoreError::Corrupt("process role".into(), other.into())),
    }
}

/// `impl Stored` for a process type whose fields are the common ones plus `$a` and `$b` (its own columns),
/// with `$state` and `$step` its state and step types.
macro_rules! stored_process {
    ($ty:ty, $table:literal, $state:ty, $step:ty, $a:ident, $b:ident) => {
        impl $crate::store::processes::Stored for $ty {
            const TABLE: &'static str = $table;
            const COLUMNS: [&'static str; 2] = [stringify!($a), stringify!($b)];

            fn to_row(&self) -> Result<$crate::store::processes::Row, $crate::store::StoreError> {
                let body = serde_json::to_string(&self.body).map_err(|e| {
                    $crate::store::StoreError::Corrupt(
                        format!("{} {}", $table, self.id),
                        e.to_string(),
                    )
                })?;
                Ok($crate::store::processes::Row {
                    id: self.id.clone(),
                    role: self.role.as_str().into(),
                    provider_pid: self.provider_pid.clone(),
                    consumer_pid: self.consumer_pid.clone(),
                    counterparty_id: self.counterparty_id.clone(),
                    counterparty_address: self.counterparty_address.clone(),
                    state: self.state.map(|s| s.as_str().to_owned()),
                    a: self.$a.clone(),
                    b: self.$b.clone(),
                    body,
                    pending: self.pending.map(|s| s.as_str().to_owned()),
                    awaiting: self.awaiting.map(|s| s.as_str().to_owned()),
                    attempts: i64::from(self.attempts),
                    last_error: self.last_error.clone(),
                    next_attempt_at: self.next_attempt_at.map($crate::store::millis),
                    lease_until: None,
                    created_at: $crate::store::millis(self.created_at),
                    updated_at: $crate::store::millis(self.updated_at),
                    version: self.version,
                })
            }

            fn version(&self) -> i64 {
                self.version
            }

            fn from_row(
                m: $crate::store::processes::Row,
            ) -> Result<Self, $crate::store::StoreError> {
                let corrupt = |what: &str, e: String| {
                    $crate::store::StoreError::Corrupt(format!("{} {} {what}", $table, m.id), e)
                };
                let state = m
                    .state
                    .as_deref()
                    .map(str::parse::<$state>)
                    .transpose()
                    .map_err(|e| corrupt("state", e.to_string()))?;
                let pending = match m.pending.as_deref() {
                    None => None,
                    Some(s) => {
                        Some(<$step>::parse(s).ok_or_else(|| corrupt("pending step", s.into()))?)
                    }
                };
                let awaiting = match m.awaiting.as_deref() {
                    None => None,
                    Some(s) => Some(
                        caap_contracts::process::Awaiting::parse(s)
                            .ok_or_else(|| corrupt("awaiting", s.into()))?,
                    ),
                };
                let body =
                    serde_json::from_str(&m.body).map_err(|e| corrupt("body", e.to_string()))?;
                Ok(Self {
                    role: $crate::store::processes::parse_role(&m.role)?,
                    provider_pid: m.provider_pid,
                    consumer_pid: m.consumer_pid,
                    counterparty_id: m.counterparty_id,
                    counterparty_address: m.counterparty_address,
                    state,
                    $a: m.a,
                    $b: m.b,
                    body,
                    pending,
                    awaiting,
                    attempts: u32::try_from(m.attempts).unwrap_or(u32::MAX),
                    last_error: m.last_error,
                    next_attempt_at: m.next_attempt_at.map($crate::store::from_millis),
                    created_at: $crate::store::from_millis(m.created_at),
                    updated_at: $crate::store::from_millis(m.updated_at),
                    version: m.version,
                    id: m.id,
                })
            }
        }
    };
}

stored_process!(
    crate::model::negotiation::Negotiation,
    "negotiations",
    caap_contracts::negotiation::state::NegotiationState,
    caap_contracts::negotiation::process::Step,
    offer_id,
    dataset_id
);
stored_process!(
    crate::model::transfer::Transfer,
    "transfers",
    caap_contracts::transfer::state::TransferState,
    caap_contracts::transfer::process::Step,
    agreement_id,
    format
);
