//! The demo's citizen in the portal: logs in at the demo's identity provider by following the real
//! redirects with a cookie jar (reqwest, redirects followed here), reads the portal's pages as a browser
//! shows them, and submits their forms. What the demo says about the portal is read from the pages here,
//! never assumed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::DemoError;

/// At most this many redirects per request (the login takes four).
const MAX_REDIRECTS: usize = 8;

/// One citizen's browser on the portal: its cookies and language.
#[derive(Debug)]
pub struct Visit {
    http: reqwest::Client,
    /// The portal's origin (`http://127.0.0.1:PORT`); cookies are sent only there.
    portal: String,
    cookies: Mutex<BTreeMap<String, String>>,
    language: &'static str,
}

/// A page as the browser ended on it.
#[derive(Debug)]
pub struct Page {
    pub url: String,
    pub status: u16,
    html: String,
}

/// A form on a page: where it posts and its fields (hidden inputs), with the text of its button.
#[derive(Debug)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
    pub text: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> DemoError {
    DemoError(format!("the citizen's visit to the portal: {what}: {e}"))
}

impl Visit {
    /// A fresh browser (no cookies) on the portal at `portal`, asking for pages in `language`.
    pub fn new(portal: &str, language: &'static str) -> Result<Visit, DemoError> {
        let http = crate::outbound::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed("a client", e))?;
        Ok(Visit {
            http,
            portal: portal.trim_end_matches('/').to_owned(),
            cookies: Mutex::default(),
            language,
        })
    }

    fn on_portal(&self, url: &str) -> bool {
        url == self.portal || url.starts_with(&format!("{}/", self.portal))
    }

    /// Sends one request (the portal's cookies attached) and keeps the cookies it sets.
    async fn send(
        &self,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Result<reqwest::Response, DemoError> {
        let mut req = match form {
            Some(fields) => self
                .http
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields)
                        .finish(),
                ),
            None => self.http.get(url),
        }
        .header(reqwest::header::ACCEPT_LANGUAGE, self.language);
        if self.on_portal(url) {
            let jar = self
                .cookies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !header.is_empty() {
                req = req.header(reqwest::header::COOKIE, header.join("; "));
            }
        }
        let res = req.send().await.map_err(|e| failed(url, e))?;
        if self.on_portal(url) {
            let mut jar = self
                .cookies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for set in res.headers().get_all(reqwest::header::SET_COOKIE) {
                let Some((name, rest)) = set.to_str().ok().and_then(|s| s.split_once('=')) else {
                    continue;
                };
                let value = rest.split(';').next().unwrap_or_default();
                let expired = rest.contains("Max-Age=0");
                if value.is_empty() || expired {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
        Ok(res)
    }

    /// Requests `url` (a path is on the portal), submitting `form` when given, and follows redirects.
    async fn open(&self, url: &str, form: Option<&[(String, String)]>) -> Result<Page, DemoError> {
        let mut url = self.absolute(url);
        let mut res = self.send(&url, form).await?;
        for _ in 0..MAX_REDIRECTS {
            if !res.status().is_redirection() {
                break;
            }
            let Some(next) = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                break;
            };
            url = url::Url::parse(&url)
                .and_then(|base| base.join(next))
                .map_err(|e| failed("a redirect", e))?
                .to_string();
            res = self.send(&url, None).await?;
        }
        let status = res.status().as_u16();
        let html = res.text().await.map_err(|e| failed(&url, e))?;
        Ok(Page { url, status, html })
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.portal)
        } else {
            url.to_owned()
        }
    }

    /// A portal page.
    pub async fn page(&self, path: &str) -> Result<Page, DemoError> {
        let page = self.open(path, None).await?;
        if page.status != 200 {
            return Err(failed(path, format!("answered {}", page.status)));
        }
        Ok(page)
    }

    /// Logs in as `name`: the portal's login button, the provider's page, the button with the name, back
    /// to the portal with a session. Answers the provider's login page (what the citizen saw there).
    pub async fn login(&self, name: &str) -> Result<Page, DemoError> {
        let at_provider = self.open("/login", None).await?;
        if self.on_portal(&at_provider.url) || at_provider.status != 200 {
            return Err(failed(
                "login",
                "the portal did not send the browser to the e-ID provider",
            ));
        }
        let form = at_provider
            .forms()
            .into_iter()
            .find(|f| f.text.contains(name))
            .ok_or_else(|| failed("login", format!("the provider's page offers no {name}")))?;
        let action = url::Url::parse(&at_provider.url)
            .and_then(|u| u.join(&form.action))
            .map_err(|e| failed("login", e))?;
        let home = self.open(action.as_str(), Some(&form.fields)).await?;
        if !self.on_portal(&home.url)
            || home.status != 200
            || home.forms().iter().all(|f| f.action != "/logout")
        {
            return Err(failed(
                "login",
                format!(
                    "no session after the provider ({} {})",
                    home.status, home.url
                ),
            ));
        }
        Ok(at_provider)
    }

    /// Follows a decision link (`/decide/{record}/{grant|withdraw|refuse}`): its confirmation page, then
    /// its form. Answers the page the portal shows next.
    pub async fn decide(&self, link: &str) -> Result<Page, DemoError> {
        let confirm = self.page(link).await?;
        let form = confirm
            .forms()
            .into_iter()
            .find(|f| f.action == link)
            .ok_or_else(|| failed(link, "no confirmation form"))?;
        let next = self.open(&form.action, Some(&form.fields)).await?;
        if next.status != 200 {
            return Err(failed(link, format!("answered {}", next.status)));
        }
        Ok(next)
    }
}

impl Page {
    /// The visible text of the page's `<main>`, one line per block; table cells joined by " · ".
    pub fn lines(&self) -> Vec<String> {
        let main = self
            .html
            .split_once("<main")
            .and_then(|(_, rest)| rest.split_once("</main>"))
            .map_or(self.html.as_str(), |(main, _)| main);
        let main = main.split_once('>').map_or(main, |(_, rest)| rest);
        let mut text = String::new();
        let mut rest = main;
        while let Some((before, after)) = rest.split_once('<') {
            text.push_str(before);
            let Some((tag, after)) = after.split_once('>') else {
                break;
            };
            let name = tag
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default();
            if matches!(name, "td" | "th") && tag.starts_with('/') {
                text.push_str(" · ");
            } else if matches!(
                name,
                "p" | "li"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "dt"
                    | "dd"
                    | "tr"
                    | "div"
                    | "section"
                    | "caption"
                    | "br"
                    | "form"
                    | "button"
                    | "table"
                    | "dl"
                    | "ul"
            ) {
                text.push('\n');
            }
            rest = after;
        }
        text.push_str(rest);
        unescape(&text)
            .lines()
            .map(|l| l.trim().trim_end_matches('·').trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The line after `label` (a `<dt>`'s `<dd>`, a heading's first paragraph).
    pub fn after(&self, label: &str) -> Option<String> {
        let lines = self.lines();
        let at = lines.iter().position(|l| l == label)?;
        lines.get(at + 1).cloned()
    }

    /// The `<h1>`.
    pub fn title(&self) -> String {
        self.lines().into_iter().next().unwrap_or_default()
    }

    /// The message from the previous action (`role="status"`).
    pub fn flash(&self) -> Option<String> {
        let (_, rest) = self.html.split_once("role=\"status\">")?;
        let (inner, _) = rest.split_once("</div>")?;
        Some(unescape(&strip_tags(inner)).trim().to_owned())
    }

    /// The links whose target starts with `prefix`, in order.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        self.html
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(unescape)
            .filter(|h| h.starts_with(prefix))
            .collect()
    }

    /// The page's forms.
    pub fn forms(&self) -> Vec<Form> {
        self.html
            .split("<form")
            .skip(1)
            .filter_map(|f| {
                let (open, rest) = f.split_once('>')?;
                let body = rest.split("</form>").next().unwrap_or_default();
                let action = attr(open, "action")?;
                let fields = body
                    .split("<input")
                    .skip(1)
                    .filter_map(|i| {
                        let tag = i.split('>').next()?;
                        Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
                    })
                    .collect();
                let text = unescape(&strip_tags(body)).trim().to_owned();
                Some(Form {
                    action,
                    fields,
                    text,
                })
            })
            .collect()
    }
}

/// An attribute's value in a tag's text (the portal's writer always double-quotes).
fn attr(tag: &str, name: &str) -> Option<String> {
    let (_, rest) = tag.split_once(&format!(" {name}=\""))?;
    rest.split('"').next().map(unescape)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Undoes the portal's escaping (`html::escape`).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_as_lines_forms_and_links() {
        let page = Page {
            url: "http://x/".into(),
            status: 200,
            html: "<header><p>Site</p></header><main id=\"main\"><h1>Withdrawals</h1>\
                   <div class=\"flash\" role=\"status\"><p>You withdrew &quot;P&quot;.</p></div>\
                   <section><h2>Lund: P &amp; Q</h2><dl><dt>Status</dt><dd><span>Deletion confirmed</span></dd></dl>\
                   <table><tr><td>7 Dec</td><td>Lund</td></tr></table>\
                   <a href=\"/decide/r%201/grant\">Grant</a>\
                   <form method=\"post\" action=\"/decide/r%201/grant\"><input type=\"hidden\" name=\"csrf\" value=\"t&amp;k\">\
                   <button type=\"submit\">Yes</button></form></section></main><footer>F</footer>"
                .into(),
        };
        assert_eq!(
            page.lines(),
            [
                "Withdrawals",
                "You withdrew \"P\".",
                "Lund: P & Q",
                "Status",
                "Deletion confirmed",
                "7 Dec · Lund",
                "Grant",
                "Yes"
            ]
        );
        assert_eq!(page.title(), "Withdrawals");
        assert_eq!(page.after("Status").as_deref(), Some("Deletion confirmed"));
        assert_eq!(page.flash().as_deref(), Some("You withdrew \"P\"."));
        assert_eq!(page.links("/decide/"), ["/decide/r%201/grant"]);
        let forms = page.forms();
        assert_eq!(forms[0].action, "/decide/r%201/grant");
        assert_eq!(forms[0].fields, [("csrf".to_owned(), "t&k".to_owned())]);
        assert_eq!(forms[0].text, "Yes");
    }
}
