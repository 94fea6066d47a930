//! Docker's go-units formatting of sizes and durations, as the daemon writes them into
//! `Status` strings and the CLI prints them (`2.01MB`, `About a minute`).

/// Docker's go-units HumanSize (decimal, 3 significant digits): `2.01MB`.
pub fn human_size(n: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Go's %.3g: three significant digits, trailing zeros dropped.
    let int_digits = if v >= 1.0 {
        (v.log10().floor() as i32) + 1
    } else {
        1
    };
    let decimals = (3 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[i])
}

/// Docker's go-units HumanDuration (`Up 3 minutes`, `Exited (0) 2 hours ago`).
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 14 * 86400 => format!("{} days", s / 86400),
        s if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        s if s < 730 * 86400 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}
