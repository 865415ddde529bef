//! The portal's languages: message catalogs (one TOML file per language, embedded in the binary), the
//! choice of language (a cookie set by the switch, else `Accept-Language`, else Swedish), and dates,
//! numbers and durations in the language's format. Every word the portal shows comes from a catalog.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};

/// The cookie that keeps the citizen's choice of language.
pub const LANGUAGE_COOKIE: &str = "caap_portal_lang";

/// A language of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Swedish, the default.
    Sv,
    /// English.
    En,
}

impl Lang {
    /// Both languages, the default first.
    pub const ALL: [Lang; 2] = [Lang::Sv, Lang::En];

    /// The BCP 47 tag (`sv`, `en`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// From a tag or a language range's primary subtag (`sv-SE` → Swedish).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language for a request: the switch's cookie, else the best of `Accept-Language` that the
    /// portal speaks, else Swedish.
    pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = cookie.and_then(Lang::from_tag) {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for range in accept_language.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_tag(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Sv, |(_, lang)| lang)
    }
}

/// Why a catalog could not be loaded (a build defect, found by the unit tests).
#[derive(Debug, thiserror::Error)]
#[error("the {lang} message catalog: {message}")]
pub struct CatalogError {
    lang: &'static str,
    message: String,
}

/// One language's messages, by dotted key.
#[derive(Debug, Clone)]
struct Catalog(HashMap<String, String>);

impl Catalog {
    fn parse(lang: Lang, text: &str) -> Result<Catalog, CatalogError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| CatalogError {
            lang: lang.tag(),
            message: e.to_string(),
        })?;
        let mut out = HashMap::new();
        flatten("", &table, &mut out).map_err(|message| CatalogError {
            lang: lang.tag(),
            message,
        })?;
        Ok(Catalog(out))
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("{key} is not a string")),
        }
    }
    Ok(())
}

/// Every language's messages and formats.
#[derive(Debug, Clone)]
pub struct Messages {
    sv: Catalog,
    en: Catalog,
    /// Dates are shown in CET/CEST (`Europe/Stockholm`) or UTC.
    central_european: bool,
}

/// The catalogs as built into the binary.
const SV: &str = include_str!("messages/sv.toml");
const EN: &str = include_str!("messages/en.toml");

impl Messages {
    /// The built-in catalogs; `time_zone` as `portal.time_zone` has it.
    pub fn builtin(time_zone: &str) -> Result<Messages, CatalogError> {
        Ok(Messages {
            sv: Catalog::parse(Lang::Sv, SV)?,
            en: Catalog::parse(Lang::En, EN)?,
            central_european: time_zone == "Europe/Stockholm",
        })
    }

    fn catalog(&self, lang: Lang) -> &Catalog {
        match lang {
            Lang::Sv => &self.sv,
            Lang::En => &self.en,
        }
    }

    /// The message `key` (the key itself, logged, when a catalog lacks it: a defect the tests catch).
    pub fn t<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        match self.catalog(lang).0.get(key) {
            Some(m) => m,
            None => {
                tracing::warn!(
                    key,
                    lang = lang.tag(),
                    "portal message missing from the catalog"
                );
                key
            }
        }
    }

    /// The message `key` with `{name}` placeholders filled in.
    pub fn f(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        let mut out = self.t(lang, key).to_owned();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// A whole number with the language's digit grouping (`12 345` in Swedish, `12,345` in English).
    pub fn number(&self, lang: Lang, n: u64) -> String {
        let digits = n.to_string();
        let separator = self.t(lang, "format.group_separator");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }

    fn local(&self, at: DateTime<Utc>) -> (chrono::NaiveDateTime, &'static str) {
        if !self.central_european {
            return (at.naive_utc(), "UTC");
        }
        if eu_summer_time(at) {
            (at.naive_utc() + Duration::hours(2), "")
        } else {
            (at.naive_utc() + Duration::hours(1), "")
        }
    }

    /// A date in the language's format (`7 december 2026`, `7 December 2026`).
    pub fn date(&self, lang: Lang, at: DateTime<Utc>) -> String {
        let (local, _) = self.local(at);
        self.f(
            lang,
            "format.date",
            &[
                ("day", &local.day().to_string()),
                ("month", self.t(lang, MONTHS[local.month0() as usize % 12])),
                ("year", &local.year().to_string()),
            ],
        )
    }

    /// A date and time in the language's format (`7 december 2026 kl. 14:05`).
    pub fn date_time(&self, lang: Lang, at: DateTime<Utc>) -> String {
        let (local, zone) = self.local(at);
        let time = format!("{:02}:{:02}", local.hour(), local.minute());
        let time = if zone.is_empty() {
            time
        } else {
            format!("{time} {zone}")
        };
        self.f(
            lang,
            "format.date_time",
            &[("date", &self.date(lang, at)), ("time", &time)],
        )
    }

    /// An ISO 8601 duration as asked for (`P1Y`, `P6M`, `P30D`, `P2W`) in words; other forms as given.
    pub fn duration(&self, lang: Lang, iso: &str) -> String {
        let Some(rest) = iso.strip_prefix('P') else {
            return iso.to_owned();
        };
        let Some(unit) = rest.chars().last() else {
            return iso.to_owned();
        };
        let Ok(n) = rest[..rest.len() - unit.len_utf8()].parse::<u64>() else {
            return iso.to_owned();
        };
        let key = match (unit, n) {
            ('Y', 1) => "duration.year",
            ('Y', _) => "duration.years",
            ('M', 1) => "duration.month",
            ('M', _) => "duration.months",
            ('W', 1) => "duration.week",
            ('W', _) => "duration.weeks",
            ('D', 1) => "duration.day",
            ('D', _) => "duration.days",
            _ => return iso.to_owned(),
        };
        self.f(lang, key, &[("n", &self.number(lang, n))])
    }

    /// Every key of the catalog of `lang` (tests compare the languages).
    #[cfg(test)]
    pub fn keys(&self, lang: Lang) -> std::collections::BTreeSet<String> {
        self.catalog(lang).0.keys().cloned().collect()
    }
}

const MONTHS: [&str; 12] = [
    "month.1", "month.2", "month.3", "month.4", "month.5", "month.6", "month.7", "month.8",
    "month.9", "month.10", "month.11", "month.12",
];

/// EU summer time: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October.
fn eu_summer_time(at: DateTime<Utc>) -> bool {
    let year = at.year();
    let start = last_sunday(year, 3).and_then(|d| d.and_hms_opt(1, 0, 0));
    let end = last_sunday(year, 10).and_then(|d| d.and_hms_opt(1, 0, 0));
    match (start, end) {
        (Some(start), Some(end)) => {
            at >= Utc.from_utc_datetime(&start) && at < Utc.from_utc_datetime(&end)
        }
        _ => false,
    }
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let mut day = NaiveDate::from_ymd_opt(year, month, 31)?;
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt()?;
    }
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn both_catalogs_have_the_same_keys() {
        let m = Messages::builtin("UTC").unwrap();
        let (sv, en) = (m.keys(Lang::Sv), m.keys(Lang::En));
        let only_sv: Vec<_> = sv.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&sv).collect();
        assert!(
            only_sv.is_empty() && only_en.is_empty(),
            "only in sv: {only_sv:?}; only in en: {only_en:?}"
        );
    }

    #[test]
    fn language_from_cookie_then_accept_language_then_swedish() {
        assert_eq!(Lang::choose(Some("en"), Some("sv")), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), Some("en-GB,en;q=0.8")), Lang::En);
        assert_eq!(Lang::choose(None, Some("de, en;q=0.5, sv;q=0.9")), Lang::Sv);
        assert_eq!(Lang::choose(None, Some("en-US;q=0.7, de")), Lang::En);
        assert_eq!(Lang::choose(None, Some("de, fr")), Lang::Sv);
        assert_eq!(Lang::choose(None, Some("en;q=0")), Lang::Sv);
        assert_eq!(Lang::choose(None, None), Lang::Sv);
    }

    #[test]
    fn dates_numbers_and_durations_in_the_languages_format() {
        let m = Messages::builtin("Europe/Stockholm").unwrap();
        // Winter (CET, UTC+1) and summer (CEST, UTC+2).
        assert_eq!(
            m.date_time(Lang::Sv, at("2026-12-07T13:05:00Z")),
            "7 december 2026 kl. 14:05"
        );
        assert_eq!(
            m.date_time(Lang::En, at("2026-07-01T13:05:00Z")),
            "1 July 2026, 15:05"
        );
        assert_eq!(m.date(Lang::Sv, at("2027-06-30T12:00:00Z")), "30 juni 2027");
        // The change to summer time in 2026: Sunday 29 March, 01:00 UTC.
        assert!(!eu_summer_time(at("2026-03-29T00:59:59Z")));
        assert!(eu_summer_time(at("2026-03-29T01:00:00Z")));
        assert!(!eu_summer_time(at("2026-10-25T01:00:00Z")));
        let utc = Messages::builtin("UTC").unwrap();
        assert_eq!(
            utc.date_time(Lang::En, at("2026-07-01T13:05:00Z")),
            "1 July 2026, 13:05 UTC"
        );
        assert_eq!(m.number(Lang::Sv, 1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(m.number(Lang::En, 1_234_567), "1,234,567");
        assert_eq!(m.number(Lang::En, 999), "999");
        assert_eq!(m.duration(Lang::Sv, "P1Y"), "1 år");
        assert_eq!(m.duration(Lang::En, "P6M"), "6 months");
        assert_eq!(m.duration(Lang::En, "PT5H"), "PT5H");
    }
}
