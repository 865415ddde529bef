//! The ODRL 2.2 policy model: policies, rules, duties, constraints and the vocabulary terms
//! (actions, operators, left operands) that caap understands.
//!
//! Everything here is plain data. Parsing lives in [`crate::parse`], serialisation in
//! `serialize.rs`, and decisions behind [`crate::PolicyDecider`]. A value of these types is
//! always *valid*: [`crate::parse_policy`] rejects unknown actions, operators and left operands
//! rather than carrying them along, so an evaluator never meets a term it does not know.
//!
//! # Participant claims (caap extension)
//! Besides the ODRL 2.2 common-vocabulary left operands, a constraint may test a claim from the
//! requester's verified credentials. Such a left operand is written **`caap:claim:<name>`**, e.g.
//! `caap:claim:membership` or `caap:claim:address.country` (a `.` walks into nested claims).
//! `<name>` starts with an ASCII letter and then uses ASCII letters, digits, `_`, `-` and `.`.
//! caap's JSON-LD context (`https://w3id.org/caap/v1/context.jsonld`) declares the `caap:` prefix, so a
//! JSON-LD processor expands it to `https://w3id.org/caap/v1#claim:<name>`; that full IRI is accepted too.

use serde_json::Number;

/// The ODRL 2.2 namespace IRI.
pub const ODRL_NS: &str = "http://www.w3.org/ns/odrl/2/";

/// The prefix of a participant-claim left operand (see the module documentation).
pub const CLAIM_PREFIX: &str = "caap:claim:";

/// [`CLAIM_PREFIX`] expanded by caap's JSON-LD context.
pub const CLAIM_IRI_PREFIX: &str = "https://w3id.org/caap/v1#claim:";

/// Declares a vocabulary enum whose variants map one-to-one onto ODRL terms.
///
/// Generates the enum, `TERMS` (every accepted bare term, for error messages), `as_str` (the
/// bare term) and `from_bare` (the inverse). Extra, non-vocabulary variants can be appended
/// after `;`; then `as_str` is replaced by `vocab_term`, which returns `None` for them.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $term:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in vocabulary order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];
            /// Every accepted bare term, in vocabulary order.
            pub const TERMS: &'static [&'static str] = &[ $( $term, )+ ];

            /// The bare ODRL term, e.g. `"use"`.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $term, )+ }
            }

            /// The full IRI in the ODRL namespace.
            pub fn iri(self) -> String {
                format!("{}{}", ODRL_NS, self.as_str())
            }

            fn from_bare(term: &str) -> Option<Self> {
                match term { $( $term => Some($name::$variant), )+ _ => None }
            }

            /// Parses a term written bare (`use`), prefixed (`odrl:use`) or as a full IRI
            /// (`http://www.w3.org/ns/odrl/2/use`). Unknown terms give `None`.
            pub fn from_term(term: &str) -> Option<Self> {
                Self::from_bare(strip_odrl(term)?)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Strips the `odrl:` prefix or the ODRL namespace from `term`. A bare term (no `:`) is returned
/// as it is; a term in any other namespace gives `None`.
pub(crate) fn strip_odrl(term: &str) -> Option<&str> {
    if let Some(rest) = term.strip_prefix("odrl:") {
        Some(rest)
    } else if let Some(rest) = term.strip_prefix(ODRL_NS) {
        Some(rest)
    } else if term.contains(':') {
        None
    } else {
        Some(term)
    }
}

/// An ODRL policy: a non-empty group of permissions, prohibitions and obligations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// The policy's identifier (`@id`, or its ODRL alias `uid`).
    pub id: Option<String>,
    /// The policy subclass (`@type`); ODRL's default is `Set`.
    pub kind: PolicyKind,
    /// The ODRL profiles the policy declares (`profile`).
    pub profile: Vec<String>,
    /// How conflicts between permissions and prohibitions resolve (`conflict`), if declared.
    pub conflict: Option<ConflictStrategy>,
    /// Permissions: what the assignee may do.
    pub permission: Vec<Rule>,
    /// Prohibitions: what the assignee must not do.
    pub prohibition: Vec<Rule>,
    /// Policy-level duties that hold regardless of any permission being exercised.
    pub obligation: Vec<Duty>,
    /// The asset every rule applies to unless the rule names its own target.
    pub target: Option<String>,
    /// The party issuing every rule unless the rule names its own assigner.
    pub assigner: Option<String>,
    /// The party receiving every rule unless the rule names its own assignee.
    pub assignee: Option<String>,
}

impl Policy {
    /// Whether the policy lets anyone use the data: a permission with no constraint and no assignee, on the
    /// policy or the rule (duties such as attribution are allowed). Open data's contract policies are such.
    pub fn permits_anyone(&self) -> bool {
        self.assignee.is_none()
            && self
                .permission
                .iter()
                .any(|r| r.constraint.is_empty() && r.refinement.is_empty() && r.assignee.is_none())
    }

    /// An empty policy of the given kind; add rules before use (an empty policy is invalid).
    pub fn new(kind: PolicyKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// The target that applies to `rule`: its own, or else the policy's.
    pub fn effective_target<'a>(&'a self, rule: &'a Rule) -> Option<&'a str> {
        rule.target.as_deref().or(self.target.as_deref())
    }

    /// The assignee that applies to `rule`: its own, or else the policy's.
    pub fn effective_assignee<'a>(&'a self, rule: &'a Rule) -> Option<&'a str> {
        rule.assignee.as_deref().or(self.assignee.as_deref())
    }
}

/// The ODRL policy subclass caap accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PolicyKind {
    /// `Set`: rules over an asset, granting nothing to anyone by itself (ODRL's default).
    #[default]
    Set,
    /// `Offer`: rules an assigner proposes (a DSP catalog or negotiation offer).
    Offer,
    /// `Agreement`: rules an assigner grants an assignee (a DSP contract agreement).
    Agreement,
    /// `Policy`: the ODRL base class, used when no subclass is meant.
    Policy,
}

impl PolicyKind {
    /// Every accepted bare term.
    pub const TERMS: &'static [&'static str] = &["Set", "Offer", "Agreement", "Policy"];

    /// The bare term, e.g. `"Offer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Set => "Set",
            PolicyKind::Offer => "Offer",
            PolicyKind::Agreement => "Agreement",
            PolicyKind::Policy => "Policy",
        }
    }

    /// Parses `Offer`, `odrl:Offer` or the full IRI.
    pub fn from_term(term: &str) -> Option<Self> {
        match strip_odrl(term)? {
            "Set" => Some(PolicyKind::Set),
            "Offer" => Some(PolicyKind::Offer),
            "Agreement" => Some(PolicyKind::Agreement),
            "Policy" => Some(PolicyKind::Policy),
            _ => None,
        }
    }
}

vocabulary! {
    /// An ODRL conflict strategy (`conflict`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ConflictStrategy {
        /// Permissions win over prohibitions.
        Perm = "perm",
        /// Prohibitions win over permissions.
        Prohibit = "prohibit",
        /// A conflict voids the whole policy.
        Invalid = "invalid",
    }
}

/// A permission or a prohibition.
///
/// `duty` is only meaningful on a permission and `remedy` only on a prohibition; the parser
/// rejects the other combinations.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's identifier (`@id`/`uid`), useful when a decision names the rule.
    pub uid: Option<String>,
    /// What the rule is about.
    pub action: Action,
    /// Refinements of `action` (ODRL `refinement`), e.g. "print at most 1200 dpi".
    pub refinement: Vec<Constraint>,
    /// The asset, when it differs from the policy's.
    pub target: Option<String>,
    /// The issuing party, when it differs from the policy's.
    pub assigner: Option<String>,
    /// The receiving party, when it differs from the policy's.
    pub assignee: Option<String>,
    /// Conditions that must all hold for the rule to apply.
    pub constraint: Vec<Constraint>,
    /// Duties the assignee takes on when exercising a permission.
    pub duty: Vec<Duty>,
    /// Duties that fall due when a prohibition is violated.
    pub remedy: Vec<Duty>,
}

impl Rule {
    /// A rule with only an action.
    pub fn new(action: Action) -> Self {
        Self {
            uid: None,
            action,
            refinement: Vec::new(),
            target: None,
            assigner: None,
            assignee: None,
            constraint: Vec::new(),
            duty: Vec::new(),
            remedy: Vec::new(),
        }
    }

    /// Adds a constraint (builder style).
    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        self.constraint.push(constraint);
        self
    }

    /// Adds a duty (builder style).
    pub fn with_duty(mut self, duty: Duty) -> Self {
        self.duty.push(duty);
        self
    }
}

/// A duty: an action someone must perform (on a permission, as an obligation, as a remedy or
/// as a consequence of another duty).
#[derive(Debug, Clone, PartialEq)]
pub struct Duty {
    /// The duty's identifier (`@id`/`uid`).
    pub uid: Option<String>,
    /// What must be done.
    pub action: Action,
    /// Refinements of `action`, e.g. "compensate with 5.00 EUR".
    pub refinement: Vec<Constraint>,
    /// The asset the duty concerns, if any.
    pub target: Option<String>,
    /// The party the duty is owed to.
    pub assigner: Option<String>,
    /// The party that must fulfil the duty.
    pub assignee: Option<String>,
    /// Conditions under which the duty applies.
    pub constraint: Vec<Constraint>,
    /// Further duties that fall due if this one is not fulfilled.
    pub consequence: Vec<Duty>,
}

impl Duty {
    /// A duty with only an action.
    pub fn new(action: Action) -> Self {
        Self {
            uid: None,
            action,
            refinement: Vec::new(),
            target: None,
            assigner: None,
            assignee: None,
            constraint: Vec::new(),
            consequence: Vec::new(),
        }
    }

    /// Adds a constraint (builder style).
    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        self.constraint.push(constraint);
        self
    }
}

/// A constraint: an atomic comparison or a logical combination of constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// `leftOperand operator rightOperand`, e.g. `purpose eq dpv:ResearchAndDevelopment`.
    Atomic {
        /// The constraint's identifier (`@id`/`uid`).
        uid: Option<String>,
        /// What is compared.
        left_operand: LeftOperand,
        /// How it is compared.
        operator: Operator,
        /// The value compared with (absent when `right_operand_reference` is used instead).
        right_operand: Option<RightOperand>,
        /// An IRI to dereference for the value (`rightOperandReference`).
        right_operand_reference: Option<String>,
        /// The unit of the right operand (`unit`), e.g. a currency.
        unit: Option<String>,
        /// The datatype of the right operand (`dataType`), e.g. `xsd:dateTime`.
        data_type: Option<String>,
    },
    /// `and`, `or`, `xone` or `andSequence` over a non-empty list of constraints.
    Logical {
        /// The constraint's identifier (`@id`/`uid`).
        uid: Option<String>,
        /// How the operands combine.
        op: LogicalOperator,
        /// The operands, in order (order matters for `andSequence`).
        constraints: Vec<Constraint>,
    },
}

impl Constraint {
    /// An atomic constraint with a right operand and no unit, datatype or identifier.
    pub fn atomic(left_operand: LeftOperand, operator: Operator, right: RightOperand) -> Self {
        Constraint::Atomic {
            uid: None,
            left_operand,
            operator,
            right_operand: Some(right),
            right_operand_reference: None,
            unit: None,
            data_type: None,
        }
    }

    /// A logical constraint without an identifier.
    pub fn logical(op: LogicalOperator, constraints: Vec<Constraint>) -> Self {
        Constraint::Logical {
            uid: None,
            op,
            constraints,
        }
    }
}

vocabulary! {
    /// The operator of a logical constraint.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum LogicalOperator {
        /// All operands hold.
        And = "and",
        /// At least one operand holds.
        Or = "or",
        /// Exactly one operand holds.
        Xone = "xone",
        /// All operands hold, evaluated in order.
        AndSequence = "andSequence",
    }
}

vocabulary! {
    /// An ODRL 2.2 action: the two core actions (`use`, `transfer`) and the common vocabulary.
    ///
    /// The hierarchy follows the ODRL 2.2 vocabulary's `includedIn`: `transfer` includes `give`
    /// and `sell`; `reproduce` includes `extract`; `use` includes every other action (but not
    /// `transfer` or what `transfer` includes). See [`Action::includes`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Action {
        /// Use the asset (the most general non-transfer action).
        Use = "use",
        /// Transfer the ownership of the asset in perpetuity.
        Transfer = "transfer",
        /// Accept that the use may be tracked.
        AcceptTracking = "acceptTracking",
        /// Use the asset as part of a composite collection.
        Aggregate = "aggregate",
        /// Add notes or commentary without changing the asset.
        Annotate = "annotate",
        /// Anonymise all or part of the asset.
        Anonymize = "anonymize",
        /// Store the asset in a non-transient form.
        Archive = "archive",
        /// Attribute the use of the asset.
        Attribute = "attribute",
        /// Compensate by transferring some amount of value.
        Compensate = "compensate",
        /// Use concurrent copies of the asset.
        ConcurrentUse = "concurrentUse",
        /// Permanently remove all copies of the asset.
        Delete = "delete",
        /// Create a derivative asset.
        Derive = "derive",
        /// Produce a digital copy from an analogue form.
        Digitize = "digitize",
        /// Display a visual asset.
        Display = "display",
        /// Supply the asset to third parties.
        Distribute = "distribute",
        /// Ensure that the rule on the asset is exclusive.
        EnsureExclusivity = "ensureExclusivity",
        /// Run a program asset.
        Execute = "execute",
        /// Extract parts of the asset as a new asset.
        Extract = "extract",
        /// Transfer ownership without compensation.
        Give = "give",
        /// Grant use of the asset to third parties.
        GrantUse = "grantUse",
        /// Include other related assets in the asset.
        Include = "include",
        /// Record the asset in an index.
        Index = "index",
        /// Inform that an action has been performed.
        Inform = "inform",
        /// Install a program asset.
        Install = "install",
        /// Change the asset's content in place.
        Modify = "modify",
        /// Move the asset, deleting the original.
        Move = "move",
        /// Grant a specified policy to a third party.
        NextPolicy = "nextPolicy",
        /// Obtain verifiable consent.
        ObtainConsent = "obtainConsent",
        /// Perform an audio asset.
        Play = "play",
        /// Perform the asset.
        Present = "present",
        /// Print the asset.
        Print = "print",
        /// Obtain data from the asset.
        Read = "read",
        /// Make copies of the asset.
        Reproduce = "reproduce",
        /// Review the policy that applies to the asset.
        ReviewPolicy = "reviewPolicy",
        /// Transfer ownership with compensation.
        Sell = "sell",
        /// Deliver the asset in real time.
        Stream = "stream",
        /// Use the asset in timed relation with other media.
        Synchronize = "synchronize",
        /// Have a text asset read out loud.
        TextToSpeech = "textToSpeech",
        /// Convert the asset into another format.
        Transform = "transform",
        /// Translate the asset into another natural language.
        Translate = "translate",
        /// Uninstall a program asset.
        Uninstall = "uninstall",
        /// Apply a watermark to the asset.
        Watermark = "watermark",
    }
}

impl Action {
    /// The action this one is directly `includedIn`, per the ODRL 2.2 vocabulary.
    pub fn parent(self) -> Option<Action> {
        match self {
            Action::Use | Action::Transfer => None,
            Action::Give | Action::Sell => Some(Action::Transfer),
            Action::Extract => Some(Action::Reproduce),
            _ => Some(Action::Use),
        }
    }

    /// Whether permitting (or prohibiting) `self` covers `other`: `other` is `self` or lies
    /// below it in the action hierarchy. `use` includes `read`, `use` includes `extract` (via
    /// `reproduce`), `transfer` includes `sell`; `use` does not include `transfer` or `sell`.
    pub fn includes(self, other: Action) -> bool {
        let mut current = Some(other);
        while let Some(action) = current {
            if action == self {
                return true;
            }
            current = action.parent();
        }
        false
    }
}

/// Deprecated ODRL 2.1 actions, and the ODRL 2.2 action to write instead (if there is one).
pub(crate) const DEPRECATED_ACTIONS: &[(&str, Option<&str>)] = &[
    ("append", Some("modify")),
    ("appendTo", Some("modify")),
    ("copy", Some("reproduce")),
    ("export", Some("transform")),
    ("lease", None),
    ("lend", None),
    ("license", Some("grantUse")),
    ("pay", Some("compensate")),
    ("preview", None),
    ("secondaryUse", None),
    ("write", Some("modify")),
    ("writeTo", Some("modify")),
];

vocabulary! {
    /// An ODRL 2.2 constraint operator.
    ///
    /// The DSP 2025-1 JSON schema lists a thirteenth value, `term-lteq` (the anchor of `lteq`
    /// in the ODRL vocabulary document); the parser accepts it as a spelling of [`Operator::Lteq`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Operator {
        /// Equal to.
        Eq = "eq",
        /// Greater than.
        Gt = "gt",
        /// Greater than or equal to.
        Gteq = "gteq",
        /// Less than.
        Lt = "lt",
        /// Less than or equal to.
        Lteq = "lteq",
        /// Not equal to.
        Neq = "neq",
        /// Is an instance of, or a subclass of (e.g. a DPV purpose).
        IsA = "isA",
        /// Has the right operand as a part.
        HasPart = "hasPart",
        /// Is a part of the right operand.
        IsPartOf = "isPartOf",
        /// Is all of the right operand's members.
        IsAllOf = "isAllOf",
        /// Is any of the right operand's members.
        IsAnyOf = "isAnyOf",
        /// Is none of the right operand's members.
        IsNoneOf = "isNoneOf",
    }
}

macro_rules! left_operands {
    ( $( $(#[$vmeta:meta])* $variant:ident = $term:literal, )+ ) => {
        /// A constraint's left operand: an ODRL 2.2 common-vocabulary left operand or a caap
        /// participant claim (`caap:claim:<name>`, see the [module documentation](self)).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum LeftOperand {
            $( $(#[$vmeta])* $variant, )+
            /// A claim from the requester's verified credentials, by name (without the
            /// `caap:claim:` prefix), e.g. `membership` or `address.country`.
            Claim(String),
        }

        impl LeftOperand {
            /// Every accepted ODRL bare term (claims are accepted besides these).
            pub const TERMS: &'static [&'static str] = &[ $( $term, )+ ];

            /// The ODRL bare term, or `None` for a claim.
            pub fn vocab_term(&self) -> Option<&'static str> {
                match self {
                    $( LeftOperand::$variant => Some($term), )+
                    LeftOperand::Claim(_) => None,
                }
            }

            fn from_bare(term: &str) -> Option<Self> {
                match term { $( $term => Some(LeftOperand::$variant), )+ _ => None }
            }
        }
    };
}

left_operands! {
    /// A point in space or time with absolute coordinates.
    AbsolutePosition = "absolutePosition",
    /// An absolute spatial position.
    AbsoluteSpatialPosition = "absoluteSpatialPosition",
    /// An absolute temporal position in a media stream.
    AbsoluteTemporalPosition = "absoluteTemporalPosition",
    /// The absolute size of the asset after the action.
    AbsoluteSize = "absoluteSize",
    /// How many times the action has been exercised.
    Count = "count",
    /// The date and time at which the action is exercised.
    DateTime = "dateTime",
    /// A period to wait before the action may be exercised (`xsd:duration`).
    DelayPeriod = "delayPeriod",
    /// The delivery channel used.
    DeliveryChannel = "deliveryChannel",
    /// How long the action may be exercised after its first exercise (`xsd:duration`).
    ElapsedTime = "elapsedTime",
    /// An identified event.
    Event = "event",
    /// The file format after the action.
    FileFormat = "fileFormat",
    /// The industry sector.
    Industry = "industry",
    /// The natural language after the action.
    Language = "language",
    /// The media context.
    Media = "media",
    /// Accumulated time of exercising the action (`xsd:duration`).
    MeteredTime = "meteredTime",
    /// A payment amount (usually in a compensate duty, with `unit` naming the currency).
    PayAmount = "payAmount",
    /// A percentage of the asset.
    Percentage = "percentage",
    /// The product or service the asset is used in.
    Product = "product",
    /// The purpose of the action (caap uses DPV purposes, e.g. `dpv:ResearchAndDevelopment`).
    Purpose = "purpose",
    /// The party receiving the result of the action.
    Recipient = "recipient",
    /// A point in space or time relative to full measures.
    RelativePosition = "relativePosition",
    /// A relative spatial position.
    RelativeSpatialPosition = "relativeSpatialPosition",
    /// A relative temporal position.
    RelativeTemporalPosition = "relativeTemporalPosition",
    /// The relative size of the asset after the action.
    RelativeSize = "relativeSize",
    /// The resolution of a rendition.
    Resolution = "resolution",
    /// A named geospatial area.
    Spatial = "spatial",
    /// Geospatial coordinates.
    SpatialCoordinates = "spatialCoordinates",
    /// The computing system or device.
    SystemDevice = "systemDevice",
    /// A recurring time interval (`xsd:duration`).
    TimeInterval = "timeInterval",
    /// The unit of counting.
    UnitOfCount = "unitOfCount",
    /// The version of the asset.
    Version = "version",
    /// A virtual (IT) location, e.g. a domain or IP range.
    VirtualLocation = "virtualLocation",
}

/// Deprecated ODRL left operands, and what to write instead.
pub(crate) const DEPRECATED_LEFT_OPERANDS: &[(&str, Option<&str>)] = &[
    ("device", Some("systemDevice")),
    ("system", Some("systemDevice")),
    ("proximity", None),
    ("timedCount", None),
];

impl LeftOperand {
    /// The term as written in the compact form: the bare ODRL term, or `caap:claim:<name>`.
    pub fn as_term(&self) -> String {
        match self {
            LeftOperand::Claim(name) => format!("{CLAIM_PREFIX}{name}"),
            other => other.vocab_term().unwrap_or_default().to_owned(),
        }
    }

    /// Parses a bare, `odrl:`-prefixed or full-IRI ODRL left operand, or `caap:claim:<name>`.
    pub fn from_term(term: &str) -> Option<Self> {
        if let Some(name) = term
            .strip_prefix(CLAIM_PREFIX)
            .or_else(|| term.strip_prefix(CLAIM_IRI_PREFIX))
        {
            return is_claim_name(name).then(|| LeftOperand::Claim(name.to_owned()));
        }
        Self::from_bare(strip_odrl(term)?)
    }

    /// The claim name, for a participant-claim left operand.
    pub fn claim_name(&self) -> Option<&str> {
        match self {
            LeftOperand::Claim(name) => Some(name),
            _ => None,
        }
    }
}

impl std::fmt::Display for LeftOperand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_term())
    }
}

/// Whether `name` is a valid claim name: an ASCII letter, then ASCII letters, digits, `_`, `-`
/// or `.`, with no empty path segment.
pub(crate) fn is_claim_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.split('.').any(str::is_empty)
}

/// The value a constraint compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum RightOperand {
    /// A plain string, e.g. `"2027-01-01"` or `"dpv:ResearchAndDevelopment"` in the compact form.
    String(String),
    /// A JSON number.
    Number(Number),
    /// A JSON boolean.
    Boolean(bool),
    /// An IRI reference, `{"@id": "…"}`.
    Reference(String),
    /// A typed literal, `{"@value": "…", "@type": "xsd:dateTime"}`.
    Typed {
        /// The lexical value.
        value: String,
        /// The datatype IRI, as written (e.g. `xsd:date`).
        datatype: String,
    },
    /// A language-tagged string, `{"@value": "…", "@language": "sv"}`.
    LangString {
        /// The text.
        value: String,
        /// The BCP 47 language tag.
        language: String,
    },
    /// A list of values (for `isAnyOf`, `isAllOf`, `isNoneOf`, …).
    List(Vec<RightOperand>),
}

impl RightOperand {
    /// A plain string operand.
    pub fn string(value: impl Into<String>) -> Self {
        RightOperand::String(value.into())
    }

    /// An IRI reference operand.
    pub fn reference(iri: impl Into<String>) -> Self {
        RightOperand::Reference(iri.into())
    }

    /// A typed literal operand.
    pub fn typed(value: impl Into<String>, datatype: impl Into<String>) -> Self {
        RightOperand::Typed {
            value: value.into(),
            datatype: datatype.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_hierarchy_follows_odrl_includedin() {
        assert!(Action::Use.includes(Action::Use));
        assert!(Action::Use.includes(Action::Read));
        assert!(Action::Use.includes(Action::Distribute));
        assert!(Action::Use.includes(Action::Extract), "via reproduce");
        assert!(Action::Reproduce.includes(Action::Extract));
        assert!(!Action::Extract.includes(Action::Reproduce));
        assert!(Action::Transfer.includes(Action::Sell));
        assert!(Action::Transfer.includes(Action::Give));
        assert!(!Action::Use.includes(Action::Transfer));
        assert!(!Action::Use.includes(Action::Sell));
        assert!(!Action::Read.includes(Action::Use));
        assert!(!Action::Transfer.includes(Action::Read));
        for &a in Action::ALL {
            assert!(a.includes(a));
            assert!(
                Action::Use.includes(a) != Action::Transfer.includes(a),
                "{a} is under exactly one root"
            );
        }
    }

    #[test]
    fn vocabulary_terms_round_trip_in_every_form() {
        for &a in Action::ALL {
            assert_eq!(Action::from_term(a.as_str()), Some(a));
            assert_eq!(Action::from_term(&format!("odrl:{a}")), Some(a));
            assert_eq!(Action::from_term(&a.iri()), Some(a));
        }
        for &op in Operator::ALL {
            assert_eq!(Operator::from_term(op.as_str()), Some(op));
        }
        assert_eq!(Operator::ALL.len(), 12);
        assert_eq!(Action::ALL.len(), 42);
        assert_eq!(LeftOperand::TERMS.len(), 32);
        for term in LeftOperand::TERMS {
            let lo = LeftOperand::from_term(term).unwrap();
            assert_eq!(lo.as_term(), *term);
        }
        assert_eq!(Action::from_term("ex:use"), None);
        assert_eq!(Action::from_term("https://www.w3.org/ns/odrl/2/use"), None);
    }

    #[test]
    fn claim_left_operands() {
        assert_eq!(
            LeftOperand::from_term("caap:claim:membership"),
            Some(LeftOperand::Claim("membership".into()))
        );
        assert_eq!(
            LeftOperand::from_term("caap:claim:address.country")
                .unwrap()
                .as_term(),
            "caap:claim:address.country"
        );
        for bad in [
            "caap:claim:",
            "caap:claim:1x",
            "caap:claim:a..b",
            "caap:claim:a b",
            "caap:claim:x.",
        ] {
            assert_eq!(LeftOperand::from_term(bad), None, "{bad}");
        }
    }
}
