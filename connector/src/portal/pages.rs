//! The portal's pages, server-rendered and complete without JavaScript: every word from the message
//! catalogs, every value escaped ([`super::html`]), landmarks (banner, navigation, main, contentinfo), a
//! skip link, labelled forms, and standings written out in words (never by colour alone).

use serde_json::Value;

use super::backend::{
    ConsentEventView, ConsentStanding, ConsentView, Decision, DeliveryView, LawfulBasis,
    NoticeStanding, NoticeView, SharedDataset,
};
use super::html::Html;
use super::i18n::{Lang, Messages};

/// What every page shows around its content.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The catalogs and formats.
    pub m: &'a Messages,
    /// The page's language.
    pub lang: Lang,
    /// The city's name (the connector's participant name).
    pub city: &'a str,
    /// The page's own path (for the navigation and the language switch's way back).
    pub path: &'a str,
    /// The session's form token, when a citizen is logged in.
    pub csrf: Option<&'a str>,
    /// A message from the previous action (catalog key, dataset title).
    pub flash: Option<(&'static str, String)>,
}

/// A document up to its open `<body>`: the language, `<title>` and the one stylesheet at `stylesheet`.
pub(super) fn document_head(lang: Lang, title: &str, stylesheet: &str) -> Html {
    let mut h = Html::document();
    h.open("html", &[("lang", Some(lang.tag()))]);
    h.open("head", &[]);
    h.void("meta", &[("charset", Some("utf-8"))]);
    h.void(
        "meta",
        &[
            ("name", Some("viewport")),
            ("content", Some("width=device-width, initial-scale=1")),
        ],
    );
    h.element("title", &[], title);
    h.void(
        "link",
        &[("rel", Some("stylesheet")), ("href", Some(stylesheet))],
    );
    h.close("head");
    h.open("body", &[]);
    h
}

/// The navigation, in order: path and catalog key.
const NAV: [(&str, &str); 6] = [
    ("/", "nav.overview"),
    ("/requests", "nav.requests"),
    ("/consents", "nav.consents"),
    ("/history", "nav.history"),
    ("/recipients", "nav.recipients"),
    ("/notices", "nav.notices"),
];

impl Frame<'_> {
    fn t(&self, key: &'static str) -> &str {
        self.m.t(self.lang, key)
    }

    fn f(&self, key: &'static str, args: &[(&str, &str)]) -> String {
        self.m.f(self.lang, key, args)
    }

    /// The whole page: `title` (catalog key) as `<title>` and `<h1>`, `body` writes the main content.
    fn page(&self, title: &'static str, body: impl FnOnce(&mut Html)) -> String {
        let site = self.f("site.name", &[("city", self.city)]);
        let mut h = document_head(
            self.lang,
            &format!("{} – {site}", self.t(title)),
            "/static/portal.css",
        );
        h.element(
            "a",
            &[("class", Some("skip")), ("href", Some("#main"))],
            self.t("site.skip"),
        );
        h.open("header", &[("class", Some("banner"))]);
        h.open("p", &[("class", Some("site"))]);
        h.element("a", &[("href", Some("/"))], &site);
        h.close("p");
        if let Some(csrf) = self.csrf {
            h.open(
                "form",
                &[
                    ("method", Some("post")),
                    ("action", Some("/logout")),
                    ("class", Some("logout")),
                ],
            );
            csrf_field(&mut h, csrf);
            h.element(
                "button",
                &[("type", Some("submit")), ("class", Some("secondary"))],
                self.t("site.logout"),
            );
            h.close("form");
        }
        h.close("header");
        if self.csrf.is_some() {
            h.open(
                "nav",
                &[
                    ("aria-label", Some(self.t("nav.label"))),
                    ("class", Some("main-nav")),
                ],
            );
            h.open("ul", &[]);
            for (path, key) in NAV {
                h.open("li", &[]);
                let current = (self.path == path).then_some("page");
                h.element(
                    "a",
                    &[("href", Some(path)), ("aria-current", current)],
                    self.t(key),
                );
                h.close("li");
            }
            h.close("ul");
            h.close("nav");
        }
        h.open("main", &[("id", Some("main")), ("tabindex", Some("-1"))]);
        h.element("h1", &[], self.t(title));
        if let Some((key, subject)) = &self.flash {
            h.open("div", &[("class", Some("flash")), ("role", Some("status"))]);
            h.element("p", &[], &self.m.f(self.lang, key, &[("dataset", subject)]));
            h.close("div");
        }
        body(&mut h);
        h.close("main");
        h.open("footer", &[("class", Some("footer"))]);
        h.open("nav", &[("aria-label", Some(self.t("language.label")))]);
        h.open("ul", &[("class", Some("languages"))]);
        for lang in Lang::ALL {
            h.open("li", &[]);
            let href = format!("/language/{}?back={}", lang.tag(), url_component(self.path));
            let current = (lang == self.lang).then_some("true");
            h.element(
                "a",
                &[
                    ("href", Some(&href)),
                    ("lang", Some(lang.tag())),
                    ("hreflang", Some(lang.tag())),
                    ("aria-current", current),
                ],
                self.m.t(lang, "language.name"),
            );
            h.close("li");
        }
        h.close("ul");
        h.close("nav");
        h.element("p", &[], &self.f("site.footer", &[("city", self.city)]));
        h.close("footer");
        h.close("body");
        h.close("html");
        h.finish()
    }

    fn date(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.m.date(self.lang, at)
    }

    fn date_time(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.m.date_time(self.lang, at)
    }

    /// `<time datetime="…">` in the language's format.
    fn time(&self, h: &mut Html, at: chrono::DateTime<chrono::Utc>, with_time: bool) {
        let text = if with_time {
            self.date_time(at)
        } else {
            self.date(at)
        };
        h.element(
            "time",
            &[(
                "datetime",
                Some(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            )],
            &text,
        );
    }

    /// A paragraph saying there is nothing to show.
    fn empty(&self, h: &mut Html, key: &'static str) {
        h.element("p", &[("class", Some("empty"))], self.t(key));
    }

    /// `<dt>` from the catalog and `<dd>` with a value.
    fn pair(&self, h: &mut Html, key: &'static str, value: &str) {
        h.element("dt", &[], self.t(key));
        h.element("dd", &[], value);
    }

    /// `<dt>` from the catalog and `<dd>` with a date and time.
    fn pair_time(&self, h: &mut Html, key: &'static str, at: chrono::DateTime<chrono::Utc>) {
        h.element("dt", &[], self.t(key));
        h.open("dd", &[]);
        self.time(h, at, true);
        h.close("dd");
    }

    /// A table cell with a date and time.
    fn cell_time(&self, h: &mut Html, at: chrono::DateTime<chrono::Utc>) {
        h.open("td", &[]);
        self.time(h, at, true);
        h.close("td");
    }

    /// Opens a table with its caption and column headers (catalog keys); [`close_table`] ends it.
    fn open_table(&self, h: &mut Html, caption: &'static str, columns: &[&'static str]) {
        h.open("div", &[("class", Some("table-wrap"))]);
        h.open("table", &[]);
        h.element("caption", &[], self.t(caption));
        h.open("thead", &[]);
        h.open("tr", &[]);
        for key in columns {
            h.element("th", &[("scope", Some("col"))], self.t(key));
        }
        h.close("tr");
        h.close("thead");
        h.open("tbody", &[]);
    }
}

fn close_table(h: &mut Html) {
    h.close("tbody");
    h.close("table");
    h.close("div");
}

/// Opens a card (a labelled region) with its heading; closed with `h.close("section")`.
fn open_card(h: &mut Html, heading: &str) {
    h.open(
        "section",
        &[("class", Some("card")), ("aria-label", Some(heading))],
    );
    h.element("h2", &[], heading);
}

fn csrf_field(h: &mut Html, csrf: &str) {
    h.void(
        "input",
        &[
            ("type", Some("hidden")),
            ("name", Some("csrf")),
            ("value", Some(csrf)),
        ],
    );
}

/// Percent-encodes a path for a query parameter.
fn url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basis_key(b: LawfulBasis) -> &'static str {
    match b {
        LawfulBasis::Consent => "basis.consent",
        LawfulBasis::PublicTask => "basis.public_task",
        LawfulBasis::Contract => "basis.contract",
        LawfulBasis::LegalObligation => "basis.legal_obligation",
    }
}

fn standing_key(s: ConsentStanding) -> &'static str {
    match s {
        ConsentStanding::Requested => "standing.requested",
        ConsentStanding::Given => "standing.given",
        ConsentStanding::Refused => "standing.refused",
        ConsentStanding::Withdrawn => "standing.withdrawn",
        ConsentStanding::Expired => "standing.expired",
    }
}

fn standing_class(s: ConsentStanding) -> &'static str {
    match s {
        ConsentStanding::Requested => "badge badge-pending",
        ConsentStanding::Given => "badge badge-ok",
        ConsentStanding::Refused | ConsentStanding::Withdrawn | ConsentStanding::Expired => {
            "badge badge-off"
        }
    }
}

fn notice_key(s: NoticeStanding) -> &'static str {
    match s {
        NoticeStanding::Sent => "notice.sent",
        NoticeStanding::Acknowledged => "notice.acknowledged",
        NoticeStanding::DeletionConfirmed => "notice.deletion_confirmed",
        NoticeStanding::Failed => "notice.failed",
    }
}

fn by_key(by: &str) -> &'static str {
    match by {
        "subject" => "by.subject",
        "controller" => "by.controller",
        "system" => "by.system",
        _ => "by.other",
    }
}

/// The decision as a path segment and back.
pub fn decision_segment(d: Decision) -> &'static str {
    match d {
        Decision::Grant => "grant",
        Decision::Refuse => "refuse",
        Decision::Withdraw => "withdraw",
    }
}

/// The decision a path segment names.
pub fn decision_from_segment(s: &str) -> Option<Decision> {
    match s {
        "grant" => Some(Decision::Grant),
        "refuse" => Some(Decision::Refuse),
        "withdraw" => Some(Decision::Withdraw),
        _ => None,
    }
}

/// Whether `decision` applies to a consent in `standing` (the backend decides; this only chooses buttons).
pub fn offered(standing: ConsentStanding, decision: Decision) -> bool {
    matches!(
        (standing, decision),
        (
            ConsentStanding::Requested,
            Decision::Grant | Decision::Refuse
        ) | (ConsentStanding::Given, Decision::Withdraw)
    )
}

fn decision_link(h: &mut Html, record: &str, d: Decision, label: &str) {
    let href = format!("/decide/{}/{}", url_component(record), decision_segment(d));
    let class = match d {
        Decision::Grant => "button",
        Decision::Refuse | Decision::Withdraw => "button secondary",
    };
    h.element("a", &[("href", Some(&href)), ("class", Some(class))], label);
}

/// The start page for visitors who are not logged in.
pub fn welcome(frame: &Frame<'_>) -> String {
    frame.page("welcome.title", |h| {
        h.element("p", &[], &frame.f("welcome.intro", &[("city", frame.city)]));
        h.open("ul", &[]);
        for key in [
            "welcome.point.see",
            "welcome.point.decide",
            "welcome.point.recipients",
        ] {
            h.element("li", &[], frame.t(key));
        }
        h.close("ul");
        h.element(
            "a",
            &[("href", Some("/login")), ("class", Some("button"))],
            frame.t("welcome.login"),
        );
        h.element("p", &[("class", Some("hint"))], frame.t("welcome.privacy"));
    })
}

/// Overview: the datasets about the citizen, with whom they are shared, why and on which basis.
pub fn overview(frame: &Frame<'_>, datasets: &[SharedDataset], pending: usize) -> String {
    frame.page("overview.title", |h| {
        if pending > 0 {
            h.open("div", &[("class", Some("callout"))]);
            h.open("p", &[]);
            h.text(&frame.f(
                "overview.pending",
                &[("count", &frame.m.number(frame.lang, pending as u64))],
            ));
            h.text(" ");
            h.element(
                "a",
                &[("href", Some("/requests"))],
                frame.t("overview.pending_link"),
            );
            h.close("p");
            h.close("div");
        }
        h.element(
            "p",
            &[],
            &frame.f("overview.intro", &[("city", frame.city)]),
        );
        if datasets.is_empty() {
            frame.empty(h, "overview.none");
        }
        for d in datasets {
            open_card(h, &d.title);
            h.open("dl", &[]);
            frame.pair(h, "overview.controller", &d.controller);
            frame.pair(h, "overview.basis", frame.t(basis_key(d.lawful_basis)));
            if !d.categories.is_empty() {
                frame.pair(h, "overview.categories", &d.categories.join(", "));
            }
            h.close("dl");
            if d.recipients.is_empty() {
                frame.empty(h, "overview.no_recipients");
            } else {
                h.element("h3", &[], frame.t("overview.recipients"));
                h.open("ul", &[]);
                let data = if d.categories.is_empty() {
                    d.title.clone()
                } else {
                    d.categories.join(", ")
                };
                for r in &d.recipients {
                    let sentence = match r.until {
                        Some(until) => frame.f(
                            "overview.recipient_until",
                            &[
                                ("recipient", &r.name),
                                ("data", &data),
                                ("purpose", &r.purpose),
                                ("until", &frame.date(until)),
                            ],
                        ),
                        None => frame.f(
                            "overview.recipient",
                            &[
                                ("recipient", &r.name),
                                ("data", &data),
                                ("purpose", &r.purpose),
                            ],
                        ),
                    };
                    h.element("li", &[], &sentence);
                }
                h.close("ul");
            }
            h.close("section");
        }
    })
}

fn consent_summary(frame: &Frame<'_>, h: &mut Html, c: &ConsentView) {
    h.open("dl", &[]);
    frame.pair(h, "consent.recipient", &c.recipient);
    frame.pair(h, "consent.dataset", &c.dataset_title);
    frame.pair(h, "consent.purpose", &c.purpose);
    if let Some(duration) = &c.duration {
        frame.pair(
            h,
            "consent.duration",
            &frame.m.duration(frame.lang, duration),
        );
    }
    if let Some(until) = c.until {
        h.element("dt", &[], frame.t("consent.until"));
        h.open("dd", &[]);
        frame.time(h, until, false);
        h.close("dd");
    }
    h.element("dt", &[], frame.t("consent.standing"));
    h.open("dd", &[]);
    h.element(
        "span",
        &[("class", Some(standing_class(c.standing)))],
        frame.t(standing_key(c.standing)),
    );
    h.text(" ");
    h.text(frame.t("consent.since"));
    h.text(" ");
    frame.time(h, c.since, true);
    h.close("dd");
    h.close("dl");
}

/// Pending requests, each with grant and refuse.
pub fn requests(frame: &Frame<'_>, consents: &[ConsentView]) -> String {
    frame.page("requests.title", |h| {
        h.element("p", &[], frame.t("requests.intro"));
        let pending: Vec<_> = consents
            .iter()
            .filter(|c| c.standing == ConsentStanding::Requested)
            .collect();
        if pending.is_empty() {
            frame.empty(h, "requests.none");
        }
        for c in pending {
            let heading = frame.f(
                "requests.heading",
                &[("recipient", &c.recipient), ("dataset", &c.dataset_title)],
            );
            open_card(h, &heading);
            consent_summary(frame, h, c);
            h.open("p", &[("class", Some("actions"))]);
            decision_link(h, &c.id, Decision::Grant, frame.t("action.grant"));
            h.text(" ");
            decision_link(h, &c.id, Decision::Refuse, frame.t("action.refuse"));
            h.close("p");
            h.close("section");
        }
    })
}

/// My consents (every answered one), with withdraw for those given.
pub fn consents(frame: &Frame<'_>, consents: &[ConsentView]) -> String {
    frame.page("consents.title", |h| {
        h.element("p", &[], frame.t("consents.intro"));
        let answered: Vec<_> = consents
            .iter()
            .filter(|c| c.standing != ConsentStanding::Requested)
            .collect();
        if answered.is_empty() {
            frame.empty(h, "consents.none");
        }
        for c in answered {
            let heading = frame.f(
                "requests.heading",
                &[("recipient", &c.recipient), ("dataset", &c.dataset_title)],
            );
            open_card(h, &heading);
            consent_summary(frame, h, c);
            if offered(c.standing, Decision::Withdraw) {
                h.open("p", &[("class", Some("actions"))]);
                decision_link(h, &c.id, Decision::Withdraw, frame.t("action.withdraw"));
                h.close("p");
            }
            h.close("section");
        }
    })
}

/// The one confirmation of a decision: what it means, and the form that makes it.
pub fn confirm(frame: &Frame<'_>, c: &ConsentView, decision: Decision) -> String {
    let (title, explain, button) = match decision {
        Decision::Grant => (
            "confirm.grant.title",
            "confirm.grant.explain",
            "confirm.grant.button",
        ),
        Decision::Refuse => (
            "confirm.refuse.title",
            "confirm.refuse.explain",
            "confirm.refuse.button",
        ),
        Decision::Withdraw => (
            "confirm.withdraw.title",
            "confirm.withdraw.explain",
            "confirm.withdraw.button",
        ),
    };
    let back = match decision {
        Decision::Withdraw => "/consents",
        Decision::Grant | Decision::Refuse => "/requests",
    };
    frame.page(title, |h| {
        consent_summary(frame, h, c);
        h.element(
            "p",
            &[],
            &frame.f(
                explain,
                &[("recipient", &c.recipient), ("dataset", &c.dataset_title)],
            ),
        );
        let action = format!(
            "/decide/{}/{}",
            url_component(&c.id),
            decision_segment(decision)
        );
        h.open(
            "form",
            &[("method", Some("post")), ("action", Some(&action))],
        );
        if let Some(csrf) = frame.csrf {
            csrf_field(h, csrf);
        }
        h.element("button", &[("type", Some("submit"))], frame.t(button));
        h.text(" ");
        h.element(
            "a",
            &[("href", Some(back)), ("class", Some("button secondary"))],
            frame.t("confirm.cancel"),
        );
        h.close("form");
    })
}

/// The history of the citizen's consent events, each with its receipt.
pub fn history(frame: &Frame<'_>, events: &[ConsentEventView]) -> String {
    frame.page("history.title", |h| {
        h.element("p", &[], frame.t("history.intro"));
        if events.is_empty() {
            frame.empty(h, "history.none");
            return;
        }
        frame.open_table(
            h,
            "history.caption",
            &[
                "history.when",
                "history.event",
                "history.dataset",
                "history.recipient",
                "history.by",
                "history.receipt",
            ],
        );
        for e in events {
            h.open("tr", &[]);
            frame.cell_time(h, e.at);
            h.open("td", &[]);
            h.element(
                "span",
                &[("class", Some(standing_class(e.standing)))],
                frame.t(standing_key(e.standing)),
            );
            h.close("td");
            h.open("td", &[]);
            h.text(&e.dataset_title);
            h.void("br", &[]);
            h.element("span", &[("class", Some("hint"))], &e.purpose);
            h.close("td");
            h.element("td", &[], &e.recipient);
            h.open("td", &[]);
            h.text(frame.t(by_key(&e.by)));
            if e.method == "portal" {
                h.void("br", &[]);
                let session = e.session.as_deref().unwrap_or("");
                h.element(
                    "span",
                    &[("class", Some("hint"))],
                    &frame.f("history.in_portal", &[("session", session)]),
                );
            }
            h.close("td");
            h.open("td", &[]);
            let base = format!("/receipts/{}/{}", url_component(&e.record), e.seq);
            let label = frame.f("history.receipt_link", &[("dataset", &e.dataset_title)]);
            h.element(
                "a",
                &[("href", Some(&base)), ("aria-label", Some(&label))],
                frame.t("history.view"),
            );
            h.void("br", &[]);
            let download = format!("{base}/download");
            let label = frame.f("history.download_link", &[("dataset", &e.dataset_title)]);
            h.element(
                "a",
                &[
                    ("href", Some(&download)),
                    ("download", Some("")),
                    ("aria-label", Some(&label)),
                ],
                frame.t("history.download"),
            );
            h.close("td");
            h.close("tr");
        }
        close_table(h);
    })
}

/// A receipt as a readable page (the signed JSON-LD is the download).
pub fn receipt(frame: &Frame<'_>, event: &ConsentEventView, receipt: &Value) -> String {
    let inner = receipt.get("receipt").unwrap_or(receipt);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    frame.page("receipt.title", |h| {
        h.element("p", &[], frame.t("receipt.intro"));
        h.open("dl", &[]);
        if let Some(id) = text(inner, "dct:identifier") {
            h.element("dt", &[], frame.t("receipt.number"));
            h.element("dd", &[("class", Some("mono"))], &id);
        }
        h.element("dt", &[], frame.t("receipt.event"));
        h.open("dd", &[]);
        h.element(
            "span",
            &[("class", Some(standing_class(event.standing)))],
            frame.t(standing_key(event.standing)),
        );
        h.close("dd");
        frame.pair_time(h, "receipt.when", event.at);
        frame.pair(h, "consent.dataset", &event.dataset_title);
        frame.pair(h, "consent.recipient", &event.recipient);
        frame.pair(h, "consent.purpose", &event.purpose);
        frame.pair(h, "history.by", frame.t(by_key(&event.by)));
        if let Some(publisher) = text(inner, "dct:publisher") {
            frame.pair(h, "receipt.publisher", &publisher);
        }
        h.element("dt", &[], frame.t("receipt.signature"));
        let signed = receipt.get("jws").and_then(Value::as_str).is_some();
        h.element(
            "dd",
            &[],
            frame.t(if signed {
                "receipt.signed"
            } else {
                "receipt.unsigned"
            }),
        );
        h.close("dl");
        let download = format!(
            "/receipts/{}/{}/download",
            url_component(&event.record),
            event.seq
        );
        h.open("p", &[]);
        h.element(
            "a",
            &[
                ("href", Some(&download)),
                ("download", Some("")),
                ("class", Some("button")),
            ],
            frame.t("receipt.download"),
        );
        h.text(" ");
        h.element("a", &[("href", Some("/history"))], frame.t("receipt.back"));
        h.close("p");
    })
}

/// Who received the citizen's data, and when.
pub fn recipients(frame: &Frame<'_>, deliveries: &[DeliveryView]) -> String {
    frame.page("recipients.title", |h| {
        h.element("p", &[], frame.t("recipients.intro"));
        if deliveries.is_empty() {
            frame.empty(h, "recipients.none");
            return;
        }
        frame.open_table(
            h,
            "recipients.caption",
            &[
                "recipients.when",
                "recipients.recipient",
                "recipients.dataset",
                "recipients.purpose",
                "recipients.records",
            ],
        );
        for d in deliveries {
            h.open("tr", &[]);
            frame.cell_time(h, d.at);
            h.element("td", &[], &d.recipient);
            h.element("td", &[], &d.dataset_title);
            h.element("td", &[], &d.purpose);
            h.element(
                "td",
                &[("class", Some("number"))],
                &frame.m.number(frame.lang, d.records),
            );
            h.close("tr");
        }
        close_table(h);
    })
}

/// The withdrawal notices sent on the citizen's behalf, and where each stands.
pub fn notices(frame: &Frame<'_>, notices: &[NoticeView]) -> String {
    frame.page("notices.title", |h| {
        h.element("p", &[], frame.t("notices.intro"));
        if notices.is_empty() {
            frame.empty(h, "notices.none");
            return;
        }
        for n in notices {
            let heading = frame.f(
                "notices.heading",
                &[("recipient", &n.recipient), ("dataset", &n.dataset_title)],
            );
            open_card(h, &heading);
            h.open("dl", &[]);
            h.element("dt", &[], frame.t("notices.standing"));
            h.open("dd", &[]);
            let class = match n.standing {
                NoticeStanding::DeletionConfirmed | NoticeStanding::Acknowledged => {
                    "badge badge-ok"
                }
                NoticeStanding::Sent => "badge badge-pending",
                NoticeStanding::Failed => "badge badge-off",
            };
            h.element(
                "span",
                &[("class", Some(class))],
                frame.t(notice_key(n.standing)),
            );
            h.close("dd");
            frame.pair_time(h, "notices.created", n.created);
            if let Some(at) = n.acknowledged {
                frame.pair_time(h, "notices.acknowledged", at);
            }
            if let Some(at) = n.deleted {
                frame.pair_time(h, "notices.deleted", at);
            }
            if n.attempts > 1 || n.last_error.is_some() {
                h.element("dt", &[], frame.t("notices.attempts"));
                h.element(
                    "dd",
                    &[],
                    &frame.m.number(frame.lang, u64::from(n.attempts)),
                );
            }
            if let Some(error) = &n.last_error {
                frame.pair(h, "notices.last_error", error);
            }
            h.close("dl");
            if n.standing == NoticeStanding::Sent && n.last_error.is_some() {
                h.element("p", &[("class", Some("hint"))], frame.t("notices.retrying"));
            }
            h.close("section");
        }
    })
}

/// A page that only says something (errors, the login's failure): title and text are catalog keys.
pub fn message(
    frame: &Frame<'_>,
    title: &'static str,
    text: &'static str,
    login_link: bool,
) -> String {
    frame.page(title, |h| {
        h.element("p", &[], frame.t(text));
        if login_link {
            h.element(
                "a",
                &[("href", Some("/login")), ("class", Some("button"))],
                frame.t("welcome.login"),
            );
        } else {
            h.element("a", &[("href", Some("/"))], frame.t("error.home"));
        }
    })
}
