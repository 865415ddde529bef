//! ODRL 2.2 policies for caap: the policy model, a strict parser for the JSON forms seen in
//! data spaces (the DSP 2025-1 compact form, `odrl:`-prefixed terms, full IRIs), the compact
//! serialisation used in DSP catalogs, offers and agreements, a plain-English summary, and the
//! seam through which policies are decided ([`PolicyDecider`]).
//!
//! The crate is a functional core: no IO, no async, no clock. Time, the requester's verified
//! claims and usage counts come in through an [`EvaluationContext`]. Parsing fails closed: an
//! action, operator or left operand outside the ODRL 2.2 vocabulary (and the `caap:claim:<name>`
//! extension, see [`model`]) is an error that names the JSON pointer of the offending field, and
//! all such errors are reported together.
//!
//! Decisions: [`OdrlEvaluator`] is the ODRL 2.2 evaluator behind the [`PolicyDecider`] seam
//! (see [`evaluate`] for its semantics); [`PermitAll`] is the foundation's placeholder.
//! [`evaluate_documents`] runs a policy, a request and a state of the world given as JSON-LD
//! or Turtle documents and returns a [`ComplianceReport`] in the FORCE compliance-report
//! vocabulary (what `caap policy evaluate` prints).
//!
//! Consent (OASC MIM4): [`consent`] holds citizens' consent records (ISO/IEC TS 27560 in DPV terms,
//! hash-chained and signed), pseudonymous subjects, and the per-record decision the data plane takes
//! with them; consent state comes in as a parameter like everything else.

pub mod consent;
pub mod decision;
mod dpv;
pub mod evaluate;
mod explain;
pub mod model;
pub mod parse;
mod rdf;
pub mod report;
mod serialize;
mod terms;
pub mod typing;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod vector_tests;

use serde::Serialize;

pub use decision::{Decision, DeonticState, EvaluationContext, PermitAll, PolicyDecider};
pub use evaluate::{Evaluation, OdrlEvaluator};
pub use model::{
    Action, ConflictStrategy, Constraint, Duty, LeftOperand, LogicalOperator, Operator, Policy,
    PolicyKind, RightOperand, Rule,
};
pub use parse::parse_policy;
pub use report::{ComplianceReport, InputFormat, evaluate_documents, read_policy};
pub use serialize::AgreementTerms;

/// Why a policy could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The JSON is not a valid ODRL policy caap understands (a bad request). Every problem found
    /// is listed, each with the JSON pointer of the field at fault.
    #[error("invalid ODRL policy: {}", list(.0))]
    Invalid(Vec<FieldError>),
}

impl PolicyError {
    /// The individual problems.
    pub fn errors(&self) -> &[FieldError] {
        match self {
            PolicyError::Invalid(errors) => errors,
        }
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One problem in a policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The RFC 6901 JSON pointer of the offending field (`""` is the document itself), e.g.
    /// `/permission/0/constraint/1/leftOperand`. Keys appear as written (`/odrl:permission/0`).
    pub pointer: String,
    /// What is wrong, and what would be accepted.
    pub message: String,
}

impl FieldError {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "(document root): {}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}
