//! Pull tokens and pull addresses, issued and checked through `caap_identity::pull_token`.

use caap_contracts::transfer::message::DataAddress;
use caap_identity::pull_token::{PullClaims, PullTokenError};
use chrono::{DateTime, Utc};

use super::DataPlane;
use super::{AccessError, ENDPOINT_TYPE, TOKEN_TTL_SECS};
use crate::service::ServiceError;
use crate::transfer::model::Transfer;

impl DataPlane {
    /// A fresh pull token for a transfer this connector provides.
    pub fn issue_pull_token(
        &self,
        t: &Transfer,
        now: DateTime<Utc>,
    ) -> Result<String, ServiceError> {
        let claims = PullClaims::new(
            &self.identity.participant_id,
            &t.counterparty_id,
            &t.id,
            &t.agreement_id,
            uuid::Uuid::new_v4().to_string(),
            now,
            chrono::Duration::seconds(TOKEN_TTL_SECS),
        );
        self.pull_tokens
            .issue(&claims)
            .map_err(|e| ServiceError::Internal(format!("token signing: {e}")))
    }

    /// The pull address for a transfer: this connector's data plane and a fresh token.
    pub fn pull_address(
        &self,
        t: &Transfer,
        now: DateTime<Utc>,
    ) -> Result<DataAddress, ServiceError> {
        let token = self.issue_pull_token(t, now)?;
        Ok(DataAddress::new(
            ENDPOINT_TYPE,
            Some(format!("{}/data/{}", self.identity.public_url, t.id)),
        )
        .with_property("authorization", format!("Bearer {token}"))
        .with_property("authType", "bearer"))
    }

    /// The claims of the pull token in `authorization`, if it is valid now and names `transfer_id`.
    pub(super) fn check_pull_token(
        &self,
        transfer_id: &str,
        authorization: Option<&str>,
    ) -> Result<PullClaims, AccessError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                AccessError::Unauthorized(
                    "present the transfer's token as `Authorization: Bearer …`".into(),
                )
            })?;
        let claims = self
            .pull_tokens
            .verify(token, self.clock.now())
            .map_err(|e| {
                AccessError::Unauthorized(match e {
                    PullTokenError::Expired => "the token has expired; refresh it (caap transfer refresh, or POST /api/v1/transfers/{id}/refresh)".into(),
                    other => other.to_string(),
                })
            })?;
        if claims.tid != transfer_id {
            return Err(AccessError::Unauthorized(
                "the token is for another transfer".into(),
            ));
        }
        Ok(claims)
    }
}
