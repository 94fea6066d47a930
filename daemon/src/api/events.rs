//! `GET /events`: replays the bus's history from `since`, then streams live events until
//! `until` passes, the client hangs up or the daemon shuts down; with moby's filters
//! (`type`, `event`, `container`, `image`, `label`, `volume`, `network`, `daemon`, `scope`).

use crate::events::Event;
use crate::server::http::{self, ApiError, ApiResult, Filters};
use crate::server::router::Req;
use crate::state::Ctx;
use tokio::sync::broadcast::error::RecvError;

const FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "volume",
    "network",
    "daemon",
    "scope",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
];

/// Parses `since`/`until` in Docker's forms ([`crate::filters::timestamp`]: unix seconds with
/// an optional fraction, RFC 3339, a local date, a duration back from now). Returns unix
/// nanoseconds.
fn parse_time(name: &str, s: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = s.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    crate::filters::timestamp(v, chrono::Utc::now())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid value for {name}: {v:?}")))
}

/// Whether `image` (a reference as events carry it) matches the filter value `want`.
fn image_matches(image: &str, want: &str) -> bool {
    if image.is_empty() {
        return false;
    }
    if image == want {
        return true;
    }
    let untagged = |r: &str| match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => n.to_string(),
        _ => r.to_string(),
    };
    !want.contains(':') && untagged(image) == want
}

/// Whether `e` passes every filter (values of one filter are alternatives).
fn matches(e: &Event, f: &Filters) -> bool {
    let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
    let any = |key: &str, ok: &dyn Fn(&str) -> bool| {
        let want = f.get(key);
        want.is_empty() || want.iter().any(|w| ok(w))
    };
    let id_or_name = |typ: &'static str| {
        move |w: &str| e.typ == typ && (e.actor.id.starts_with(w) || attr("name") == w)
    };
    any("type", &|w| e.typ == w)
        && any("event", &|w| {
            e.action == w || e.action.split(':').next() == Some(w)
        })
        && any("scope", &|w| w == "local")
        && any("container", &|w| {
            (e.typ == "container" && (e.actor.id.starts_with(w) || attr("name") == w))
                || attr("container") == w
        })
        && any("image", &|w| {
            image_matches(attr("image"), w)
                || (e.typ == "image" && (e.actor.id == w || image_matches(attr("name"), w)))
        })
        && any("volume", &id_or_name("volume"))
        && any("network", &id_or_name("network"))
        && any("daemon", &id_or_name("daemon"))
        && any("plugin", &id_or_name("plugin"))
        && super::filters::labels(f).matches(|k| e.actor.attributes.get(k).map(String::as_str))
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// `GET /events`.
pub async fn events(ctx: Ctx, req: Req) -> ApiResult {
    let since = parse_time("since", req.query.get("since"))?;
    let until = parse_time("until", req.query.get("until"))?;
    let filters = req.query.filters()?;
    filters.only(FILTERS)?;
    let (past, mut rx) = ctx.events.subscribe();
    let stop = ctx.shutdown.fired();
    let (tx, resp) = http::json_stream();
    tokio::spawn(async move {
        tokio::pin!(stop);
        let in_range = |e: &Event| {
            since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u)
        };
        if since.is_some() {
            for e in past.iter().filter(|e| in_range(e) && matches(e, &filters)) {
                if !tx.send(serde_json::to_value(e).unwrap_or_default()).await {
                    return;
                }
            }
        }
        loop {
            let left = until.map(|u| {
                std::time::Duration::from_nanos(u.saturating_sub(now_nanos()).max(0) as u64)
            });
            let next = tokio::select! {
                _ = &mut stop => return,
                _ = tx.0.closed() => return,
                _ = tokio::time::sleep(left.unwrap_or(std::time::Duration::from_secs(31_536_000))), if left.is_some() => return,
                n = rx.recv() => n,
            };
            match next {
                Ok(e) if in_range(&e) && matches(&e, &filters) => {
                    if !tx.send(serde_json::to_value(&e).unwrap_or_default()).await {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(typ: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            typ: typ.into(),
            action: action.into(),
            actor: crate::events::Actor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
            status: None,
            id: None,
            from: None,
        }
    }

    fn f(pairs: &[(&str, &str)]) -> Filters {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Filters(m)
    }

    #[test]
    fn filters_select_like_moby() {
        let start = ev(
            "container",
            "start",
            "abcdef0123",
            &[("name", "web"), ("image", "busybox:latest"), ("app", "x")],
        );
        assert!(matches(&start, &f(&[])));
        assert!(matches(
            &start,
            &f(&[("type", "container"), ("event", "start")])
        ));
        assert!(matches(
            &start,
            &f(&[("event", "stop"), ("event", "start")])
        ));
        assert!(!matches(&start, &f(&[("type", "image")])));
        assert!(matches(&start, &f(&[("container", "web")])));
        assert!(matches(&start, &f(&[("container", "abcdef")])));
        assert!(!matches(&start, &f(&[("container", "db")])));
        assert!(matches(&start, &f(&[("image", "busybox")])));
        assert!(!matches(&start, &f(&[("image", "busybox:1")])));
        assert!(matches(
            &start,
            &f(&[("label", "app=x"), ("label", "name")])
        ));
        assert!(!matches(&start, &f(&[("label", "app=y")])));
        let health = ev("container", "health_status: healthy", "abc", &[]);
        assert!(matches(&health, &f(&[("event", "health_status")])));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("since", Some("12")).ok(),
            Some(Some(12_000_000_000))
        );
        assert_eq!(
            parse_time("since", Some("1.5")).ok(),
            Some(Some(1_500_000_000))
        );
        assert_eq!(parse_time("since", None).ok(), Some(None));
        assert!(parse_time("since", Some("soon")).is_err());
        assert_eq!(
            parse_time("until", Some("1970-01-01T00:00:02Z")).ok(),
            Some(Some(2_000_000_000))
        );
    }
}
