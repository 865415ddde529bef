//! Identity tables: the credentials this connector holds, the `jti`s of self-issued tokens seen
//! (shared by replicas), what each verified caller presented (for the revocation monitor), and the
//! trust anchor's members, issuance requests and issued credentials.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_millis, millis};

/// A credential held by this connector (its credential service presents it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldCredential {
    /// The credential id (or a digest of the JWT when it has none).
    pub id: String,
    /// Its types.
    pub types: Vec<String>,
    /// The issuer DID.
    pub issuer: String,
    /// `VC1_0_JWT` or `VC2_0_JOSE`.
    pub format: String,
    /// The JWT.
    #[serde(skip)]
    pub jwt: String,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
}

/// A credential a caller presented, as remembered for the revocation monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentedCredential {
    /// Its id, or a label.
    pub id: String,
    /// Its types.
    pub types: Vec<String>,
    /// The issuer DID.
    pub issuer: String,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// Its status list entries.
    pub status: Vec<caap_identity::vc::StatusEntry>,
}

/// A member of the trust anchor's federation and what it may be issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberProfile {
    /// The member's DID.
    pub holder: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role credentials to issue besides the membership: `Municipality`, `Supplier`, …
    #[serde(default)]
    pub roles: Vec<String>,
    /// The member connector's DSP address, published in the member directory so other members
    /// crawl its catalog (none for a member without a connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsp_address: Option<String>,
    /// Attributes for the role credentials' subjects (e.g. `municipalityCode`, `country`).
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// An issuance request the trust anchor received.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceRequest {
    /// The issuer-side id (`issuerPid`).
    pub id: String,
    /// The requesting holder's DID.
    pub holder: String,
    /// The holder's own id for the request (`holderPid`).
    pub holder_pid: String,
    /// `RECEIVED`, `ISSUED` or `REJECTED`.
    pub status: String,
    /// Why it was rejected, or why delivery is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A credential the trust anchor issued.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCredential {
    /// The credential id.
    pub id: String,
    /// The holder's DID.
    pub holder: String,
    /// Its type (besides `VerifiableCredential`).
    pub credential_type: String,
    /// Its bit in the status list.
    pub status_index: u64,
    /// The request it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Issued.
    pub issued_at: DateTime<Utc>,
    /// Valid until.
    pub valid_until: DateTime<Utc>,
    /// Revoked when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
}

/// `$1, $2 …` placeholders as the backend wants them.
pub(super) fn sql(backend: DbBackend, text: &str) -> String {
    match backend {
        DbBackend::Postgres => text.to_owned(),
        _ => text.replace('$', "?"),
    }
}

pub(super) fn get<T: sea_orm::TryGetable>(
    row: &sea_orm::QueryResult,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get("", col)
        .map_err(|e| StoreError::Corrupt(col.to_owned(), e.to_string()))
}

pub(super) fn json_col<T: serde::de::DeserializeOwned>(
    row: &sea_orm::QueryResult,
    col: &str,
) -> Result<T, StoreError> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(col.to_owned(), e.to_string()))
}

impl Store {
    /// One write statement (`?` placeholders) under the write gate; the rows it changed.
    pub(super) async fn exec(&self, text: &str, values: Vec<DbValue>) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        Self::exec_on(&self.db, text, values).await
    }

    /// One write statement (`?` placeholders) on `db` (a transaction the caller holds); the rows it changed.
    pub(super) async fn exec_on<C: ConnectionTrait>(
        db: &C,
        text: &str,
        values: Vec<DbValue>,
    ) -> Result<u64, StoreError> {
        let backend = db.get_database_backend();
        let res = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql(backend, text),
                values,
            ))
            .await?;
        Ok(res.rows_affected())
    }

    pub(super) async fn rows(
        &self,
        text: &str,
        values: Vec<DbValue>,
    ) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
        let backend = self.db.get_database_backend();
        Ok(self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql(backend, text),
                values,
            ))
            .await?)
    }

    /// Stores (or replaces) a held credential.
    pub async fn put_held_credential(&self, c: &HeldCredential) -> Result<(), StoreError> {
        let types = serde_json::to_string(&c.types).unwrap_or_default();
        self.exec(
            "INSERT INTO held_credentials (id, types, issuer, format, jwt, valid_until, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET types = $2, issuer = $3, \
             format = $4, jwt = $5, valid_until = $6, received_at = $7",
            vec![
                c.id.clone().into(),
                types.into(),
                c.issuer.clone().into(),
                c.format.clone().into(),
                c.jwt.clone().into(),
                c.valid_until.map(millis).into(),
                millis(c.received_at).into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Every held credential, newest first.
    pub async fn held_credentials(&self) -> Result<Vec<HeldCredential>, StoreError> {
        let rows = self
            .rows(
                "SELECT id, types, issuer, format, jwt, valid_until, received_at FROM held_credentials \
                 ORDER BY received_at DESC, id",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldCredential {
                    id: get(r, "id")?,
                    types: json_col(r, "types")?,
                    issuer: get(r, "issuer")?,
                    format: get(r, "format")?,
                    jwt: get(r, "jwt")?,
                    valid_until: get::<Option<i64>>(r, "valid_until")?.map(from_millis),
                    received_at: from_millis(get(r, "received_at")?),
                })
            })
            .collect()
    }

    /// Forgets a held credential; false when there was none with that id.
    pub async fn delete_held_credential(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .exec(
                "DELETE FROM held_credentials WHERE id = $1",
                vec![id.into()],
            )
            .await?
            > 0)
    }

    /// Records a self-issued token's `key` (issuer and jti) until `expires_at`: true the first
    /// time, false for a replay. Expired entries are reused and swept now and then.
    pub async fn first_jti_use(
        &self,
        key: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if rand::random::<u8>() == 0 {
            self.exec(
                "DELETE FROM dcp_jti WHERE expires_at < $1",
                vec![millis(now).into()],
            )
            .await?;
        }
        let inserted = self
            .exec(
                "INSERT INTO dcp_jti (jti_key, expires_at) VALUES ($1, $2) ON CONFLICT (jti_key) \
                 DO UPDATE SET expires_at = $2 WHERE dcp_jti.expires_at < $3",
                vec![key.into(), millis(expires_at).into(), millis(now).into()],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Remembers what a caller presented at its last verification.
    pub async fn put_verified_caller(
        &self,
        participant_id: &str,
        credentials: &[PresentedCredential],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(credentials).unwrap_or_default();
        self.exec(
            "INSERT INTO verified_callers (participant_id, credentials, verified_at) VALUES ($1, $2, $3) \
             ON CONFLICT (participant_id) DO UPDATE SET credentials = $2, verified_at = $3",
            vec![participant_id.into(), text.into(), millis(now).into()],
        )
        .await?;
        Ok(())
    }

    /// What a caller presented at its last verification.
    pub async fn verified_caller(
        &self,
        participant_id: &str,
    ) -> Result<Option<(Vec<PresentedCredential>, DateTime<Utc>)>, StoreError> {
        let rows = self
            .rows(
                "SELECT credentials, verified_at FROM verified_callers WHERE participant_id = $1",
                vec![participant_id.into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok((
                    json_col(r, "credentials")?,
                    from_millis(get(r, "verified_at")?),
                ))
            })
            .transpose()
    }

    /// Adds or replaces a federation member.
    pub async fn put_member(
        &self,
        member: &MemberProfile,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(member).unwrap_or_default();
        self.exec(
            "INSERT INTO authority_members (holder, profile, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (holder) DO UPDATE SET profile = $2",
            vec![
                member.holder.clone().into(),
                text.into(),
                millis(now).into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// A federation member.
    pub async fn member(&self, holder: &str) -> Result<Option<MemberProfile>, StoreError> {
        let rows = self
            .rows(
                "SELECT profile FROM authority_members WHERE holder = $1",
                vec![holder.into()],
            )
            .await?;
        rows.first().map(|r| json_col(r, "profile")).transpose()
    }

    /// Removes a federation member from the register (its issued credentials stay, for revocation).
    /// Returns whether it was there.
    pub async fn remove_member(&self, holder: &str) -> Result<bool, StoreError> {
        Ok(self
            .exec(
                "DELETE FROM authority_members WHERE holder = $1",
                vec![holder.into()],
            )
            .await?
            > 0)
    }

    /// Every federation member.
    pub async fn members(&self) -> Result<Vec<MemberProfile>, StoreError> {
        let rows = self
            .rows(
                "SELECT profile FROM authority_members ORDER BY holder",
                vec![],
            )
            .await?;
        rows.iter().map(|r| json_col(r, "profile")).collect()
    }

    /// Records a new issuance request.
    pub async fn put_issuance_request(&self, r: &IssuanceRequest) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO authority_requests (id, holder, holder_pid, status, reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET status = $4, reason = $5, \
             updated_at = $7",
            vec![
                r.id.clone().into(),
                r.holder.clone().into(),
                r.holder_pid.clone().into(),
                r.status.clone().into(),
                r.reason.clone().into(),
                millis(r.created_at).into(),
                millis(r.updated_at).into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// An issuance request by its id.
    pub async fn issuance_request(&self, id: &str) -> Result<Option<IssuanceRequest>, StoreError> {
        let rows = self
            .rows(
                "SELECT id, holder, holder_pid, status, reason, created_at, updated_at \
                 FROM authority_requests WHERE id = $1",
                vec![id.into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(IssuanceRequest {
                    id: get(r, "id")?,
                    holder: get(r, "holder")?,
                    holder_pid: get(r, "holder_pid")?,
                    status: get(r, "status")?,
                    reason: get(r, "reason")?,
                    created_at: from_millis(get(r, "created_at")?),
                    updated_at: from_millis(get(r, "updated_at")?),
                })
            })
            .transpose()
    }

    /// The next free status-list index (the trust anchor runs as one process).
    pub async fn next_status_index(&self) -> Result<u64, StoreError> {
        let rows = self
            .rows(
                "SELECT COALESCE(MAX(status_index), -1) + 1 AS next FROM authority_credentials",
                vec![],
            )
            .await?;
        let next: i64 = rows
            .first()
            .map(|r| get(r, "next"))
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(next).unwrap_or(0))
    }

    /// Records an issued credential.
    pub async fn put_issued_credential(&self, c: &IssuedCredential) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO authority_credentials (id, holder, credential_type, status_index, request_id, \
             issued_at, valid_until, revoked_at, revoke_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                c.id.clone().into(),
                c.holder.clone().into(),
                c.credential_type.clone().into(),
                i64::try_from(c.status_index).unwrap_or(i64::MAX).into(),
                c.request_id.clone().into(),
                millis(c.issued_at).into(),
                millis(c.valid_until).into(),
                c.revoked_at.map(millis).into(),
                c.revoke_reason.clone().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Issued credentials, all or of one holder, oldest first.
    pub async fn issued_credentials(
        &self,
        holder: Option<&str>,
    ) -> Result<Vec<IssuedCredential>, StoreError> {
        let base = "SELECT id, holder, credential_type, status_index, request_id, issued_at, valid_until, \
                    revoked_at, revoke_reason FROM authority_credentials";
        let rows = match holder {
            Some(h) => {
                self.rows(
                    &format!("{base} WHERE holder = $1 ORDER BY status_index"),
                    vec![h.into()],
                )
                .await?
            }
            None => {
                self.rows(&format!("{base} ORDER BY status_index"), vec![])
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(IssuedCredential {
                    id: get(r, "id")?,
                    holder: get(r, "holder")?,
                    credential_type: get(r, "credential_type")?,
                    status_index: u64::try_from(get::<i64>(r, "status_index")?).unwrap_or(0),
                    request_id: get(r, "request_id")?,
                    issued_at: from_millis(get(r, "issued_at")?),
                    valid_until: from_millis(get(r, "valid_until")?),
                    revoked_at: get::<Option<i64>>(r, "revoked_at")?.map(from_millis),
                    revoke_reason: get(r, "revoke_reason")?,
                })
            })
            .collect()
    }

    /// Revokes a credential by id, or every credential of a holder; the number revoked now.
    pub async fn revoke_issued(
        &self,
        credential_or_holder: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.exec(
            "UPDATE authority_credentials SET revoked_at = $1, revoke_reason = $2 \
             WHERE (id = $3 OR holder = $3) AND revoked_at IS NULL",
            vec![
                millis(now).into(),
                reason.into(),
                credential_or_holder.into(),
            ],
        )
        .await
    }
}
