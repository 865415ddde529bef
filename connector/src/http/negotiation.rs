//! DSP 2025-1 contract negotiation endpoints, provider and consumer side. Both share the `/negotiations/:pid`
//! space: the pid is ours, and the negotiation it names knows our role. The handlers ([`super::process`]) take
//! only the [`Negotiations`] service.

use actix_web::web;
use caap_contracts::negotiation::messages::{
    ContractAgreementMessage, ContractAgreementVerificationMessage,
    ContractNegotiationEventMessage, ContractNegotiationTerminationMessage, ContractOfferMessage,
    ContractRequestMessage,
};

use super::process::{get, in_process, initial};
use crate::negotiation::Negotiations;

type N = Negotiations;

/// Routes under the DSP base.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/negotiations/request",
        web::post().to(initial::<N, ContractRequestMessage>),
    )
    .route(
        "/negotiations/offers",
        web::post().to(initial::<N, ContractOfferMessage>),
    )
    .route("/negotiations/{pid}", web::get().to(get::<N>))
    .route(
        "/negotiations/{pid}/request",
        web::post().to(in_process::<N, ContractRequestMessage>),
    )
    .route(
        "/negotiations/{pid}/offers",
        web::post().to(in_process::<N, ContractOfferMessage>),
    )
    .route(
        "/negotiations/{pid}/events",
        web::post().to(in_process::<N, ContractNegotiationEventMessage>),
    )
    .route(
        "/negotiations/{pid}/agreement",
        web::post().to(in_process::<N, ContractAgreementMessage>),
    )
    .route(
        "/negotiations/{pid}/agreement/verification",
        web::post().to(in_process::<N, ContractAgreementVerificationMessage>),
    )
    .route(
        "/negotiations/{pid}/termination",
        web::post().to(in_process::<N, ContractNegotiationTerminationMessage>),
    );
}
