//! A small, embedded part of the W3C Data Privacy Vocabulary (DPV 2) purpose taxonomy, for
//! `purpose isA <dpv purpose>` constraints: the common purposes and their `skos:broader`
//! parents. A purpose outside this table is only `isA` itself.
//!
//! Purposes are accepted as `dpv:X`, `https://w3id.org/dpv#X`, `https://w3id.org/dpv/owl#X`,
//! `https://w3id.org/dpv/dpv-owl#X` and the older `http://www.w3.org/ns/dpv#X`.

/// `(purpose, direct parents)`; every parent is itself in the table or is `Purpose`.
const PURPOSES: &[(&str, &[&str])] = &[
    ("Purpose", &[]),
    ("AccountManagement", &["Purpose"]),
    ("CommunicationManagement", &["Purpose"]),
    (
        "CommunicationForCustomerCare",
        &["CommunicationManagement", "CustomerCare"],
    ),
    ("CustomerManagement", &["Purpose"]),
    ("CustomerCare", &["CustomerManagement"]),
    ("CustomerClaimsManagement", &["CustomerManagement"]),
    ("CustomerOrderManagement", &["CustomerManagement"]),
    ("CustomerRelationshipManagement", &["CustomerManagement"]),
    ("CustomerSolvencyMonitoring", &["CustomerManagement"]),
    ("EnforceSecurity", &["Purpose"]),
    ("EnforceAccessControl", &["EnforceSecurity"]),
    ("FraudPreventionAndDetection", &["EnforceSecurity"]),
    ("IdentityVerification", &["EnforceSecurity"]),
    ("EstablishContractualAgreement", &["Purpose"]),
    ("FulfilmentOfObligation", &["Purpose"]),
    (
        "FulfilmentOfContractualObligation",
        &["FulfilmentOfObligation"],
    ),
    ("LegalCompliance", &["FulfilmentOfObligation"]),
    ("HumanResourceManagement", &["Purpose"]),
    ("Marketing", &["Purpose"]),
    ("DirectMarketing", &["Marketing"]),
    ("Advertising", &["Marketing"]),
    (
        "PersonalisedAdvertising",
        &["Advertising", "Personalisation"],
    ),
    ("PublicRelations", &["Marketing"]),
    ("SocialMediaMarketing", &["Marketing"]),
    ("OrganisationGovernance", &["Purpose"]),
    ("DisputeManagement", &["OrganisationGovernance"]),
    ("MemberPartnerManagement", &["OrganisationGovernance"]),
    (
        "OrganisationComplianceManagement",
        &["OrganisationGovernance"],
    ),
    ("OrganisationRiskManagement", &["OrganisationGovernance"]),
    ("Personalisation", &["Purpose"]),
    (
        "ServicePersonalisation",
        &["Personalisation", "ServiceProvision"],
    ),
    ("RecordManagement", &["Purpose"]),
    ("ResearchAndDevelopment", &["Purpose"]),
    ("AcademicResearch", &["ResearchAndDevelopment"]),
    ("CommercialResearch", &["ResearchAndDevelopment"]),
    ("NonCommercialResearch", &["ResearchAndDevelopment"]),
    ("ScientificResearch", &["ResearchAndDevelopment"]),
    ("ServiceProvision", &["Purpose"]),
    ("PaymentManagement", &["ServiceProvision"]),
    ("DeliveryOfGoods", &["ServiceProvision"]),
    ("RequestedServiceProvision", &["ServiceProvision"]),
    ("SellProducts", &["ServiceProvision"]),
    ("ServiceOptimisation", &["ServiceProvision"]),
    ("ServiceRegistration", &["ServiceProvision"]),
    ("ServiceUsageAnalytics", &["ServiceProvision"]),
    ("RepairImpairments", &["ServiceProvision"]),
    ("VendorManagement", &["Purpose"]),
    ("VendorPayment", &["VendorManagement"]),
    ("VendorRecordsManagement", &["VendorManagement"]),
    ("VendorSelectionAssessment", &["VendorManagement"]),
    ("PublicBenefit", &["Purpose"]),
    ("CommonGood", &["PublicBenefit"]),
];

const DPV_NAMESPACES: &[&str] = &[
    "dpv:",
    "https://w3id.org/dpv#",
    "https://w3id.org/dpv/owl#",
    "https://w3id.org/dpv/dpv-owl#",
    "http://www.w3.org/ns/dpv#",
    "https://www.w3.org/ns/dpv#",
];

/// The DPV local name of `iri` (`dpv:ResearchAndDevelopment` → `ResearchAndDevelopment`), if
/// it is in a DPV namespace.
pub(crate) fn dpv_local(iri: &str) -> Option<&str> {
    DPV_NAMESPACES
        .iter()
        .find_map(|ns| iri.strip_prefix(ns))
        .filter(|l| !l.is_empty())
}

/// Whether two purpose references name the same purpose (DPV spellings are unified).
pub(crate) fn same_purpose(a: &str, b: &str) -> bool {
    match (dpv_local(a), dpv_local(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn parents(local: &str) -> &'static [&'static str] {
    PURPOSES
        .iter()
        .find(|(p, _)| *p == local)
        .map_or(&[], |(_, parents)| parents)
}

/// Whether purpose `sub` is `sup` or a narrower purpose of it (over the embedded hierarchy).
pub(crate) fn purpose_is_a(sub: &str, sup: &str) -> bool {
    if same_purpose(sub, sup) {
        return true;
    }
    let (Some(sub), Some(sup)) = (dpv_local(sub), dpv_local(sup)) else {
        return false;
    };
    let mut stack = vec![sub];
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        if p == sup {
            return true;
        }
        seen += 1;
        if seen > PURPOSES.len() * 4 {
            return false;
        }
        stack.extend_from_slice(parents(p));
    }
    false
}

/// Whether the purpose is in the embedded table.
#[cfg(test)]
pub(crate) fn is_known_purpose(iri: &str) -> bool {
    dpv_local(iri).is_some_and(|l| PURPOSES.iter().any(|(p, _)| *p == l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_is_closed_and_acyclic() {
        for (p, parents) in PURPOSES {
            for parent in *parents {
                assert!(PURPOSES.iter().any(|(q, _)| q == parent), "{p} → {parent}");
            }
            assert!(purpose_is_a(&format!("dpv:{p}"), "dpv:Purpose"), "{p}");
        }
    }

    #[test]
    fn is_a_follows_broader_purposes_in_any_spelling() {
        assert!(purpose_is_a(
            "https://w3id.org/dpv#AcademicResearch",
            "dpv:ResearchAndDevelopment"
        ));
        assert!(purpose_is_a(
            "dpv:PersonalisedAdvertising",
            "http://www.w3.org/ns/dpv#Personalisation"
        ));
        assert!(!purpose_is_a(
            "dpv:ResearchAndDevelopment",
            "dpv:AcademicResearch"
        ));
        assert!(!purpose_is_a("dpv:Marketing", "dpv:ServiceProvision"));
        assert!(purpose_is_a("ex:own", "ex:own"));
        assert!(!purpose_is_a("ex:own", "dpv:Purpose"));
        assert!(is_known_purpose("dpv:PaymentManagement"));
        assert!(!is_known_purpose("dpv:Nonsense"));
    }
}
