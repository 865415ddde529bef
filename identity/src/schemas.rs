//! caap's built-in credential schemas: the JSON Schemas of the subjects of the credentials a caap trust
//! anchor issues (membership and one credential per role), which every connector checks credentials
//! naming them against, and what an issuer offers (`credentialsSupported`). Nothing is fetched.

use serde_json::Value;

use crate::dcp::issuance;

/// The credential type every member gets.
pub const MEMBERSHIP: &str = "MembershipCredential";
/// Roles the authority issues credentials for, with their credential types.
pub const ROLES: &[(&str, &str)] = &[
    ("Municipality", "MunicipalityCredential"),
    ("Supplier", "SupplierCredential"),
];

/// Where caap's credential schemas are named (they are built in; nothing is fetched).
pub const SCHEMA_BASE: &str = "https://w3id.org/caap/schemas/v1/";

/// The schema id of a credential type.
pub fn schema_id(credential_type: &str) -> String {
    format!("{SCHEMA_BASE}{credential_type}.json")
}

/// caap's built-in JSON Schemas for the subjects of the credentials an authority issues; every
/// connector checks credentials naming them.
pub fn builtin_schemas() -> Vec<(String, Value)> {
    let membership = serde_json::json!({
        "type": "object",
        "required": ["id", "memberOf"],
        "properties": {
            "id": {"type": "string", "pattern": "^did:"},
            "memberOf": {"type": "string", "minLength": 1},
            "since": {"type": "string", "format": "date"}
        }
    });
    let role = |name: &str, extra: Value| {
        let mut schema = serde_json::json!({
            "type": "object",
            "required": ["id", "role"],
            "properties": {
                "id": {"type": "string", "pattern": "^did:"},
                "role": {"const": name},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
            }
        });
        if let (Some(props), Value::Object(more)) = (
            schema.get_mut("properties").and_then(Value::as_object_mut),
            extra,
        ) {
            props.extend(more);
        }
        schema
    };
    vec![
        (schema_id(MEMBERSHIP), membership),
        (
            schema_id("MunicipalityCredential"),
            role(
                "Municipality",
                serde_json::json!({"municipalityCode": {"type": "string", "pattern": "^[0-9]{4}$"}}),
            ),
        ),
        (
            schema_id("SupplierCredential"),
            role(
                "Supplier",
                serde_json::json!({"organizationNumber": {"type": "string"}}),
            ),
        ),
    ]
}

/// The credential type of a role (`Municipality` → `MunicipalityCredential`).
pub fn role_credential(role: &str) -> Option<&'static str> {
    ROLES.iter().find(|(r, _)| *r == role).map(|(_, t)| *t)
}

/// What the issuer offers (`credentialsSupported`): the membership and every role credential. The
/// object ids are absolute IRIs (`https://w3id.org/caap/v1/credentials/<type>`); a request may also name
/// an object by its credential type.
pub fn credentials_supported() -> Vec<issuance::CredentialObject> {
    std::iter::once(MEMBERSHIP)
        .chain(ROLES.iter().map(|(_, t)| *t))
        .map(|t| {
            let id = format!("https://w3id.org/caap/v1/credentials/{t}");
            issuance::CredentialObject::supported(&id, t, &schema_id(t), "vc20-bssl/jwt")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_issued_type_has_one_schema_and_is_offered() {
        let schemas = builtin_schemas();
        let offered = credentials_supported();
        assert_eq!(schemas.len(), 1 + ROLES.len());
        assert_eq!(offered.len(), schemas.len());
        for t in std::iter::once(MEMBERSHIP).chain(ROLES.iter().map(|(_, t)| *t)) {
            assert_eq!(
                schemas.iter().filter(|(id, _)| *id == schema_id(t)).count(),
                1,
                "{t}"
            );
        }
        assert_eq!(role_credential("Supplier"), Some("SupplierCredential"));
        assert_eq!(role_credential("Citizen"), None);
    }
}
