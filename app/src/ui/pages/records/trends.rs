//! Measurements over time, as charts.

use super::*;

#[component]
pub(super) fn Trends() -> impl IntoView {
    let chart = expect_context::<Chart>();
    let series = Memo::new(move |_| {
        chart.records.with(|r| {
            // A corrected record's values are replaced by its correction's.
            let summaries = r
                .iter()
                .flat_map(|r| r.iter())
                .filter(|l| l.meta.amended_by.is_empty())
                .filter_map(|l| l.opened().map(|o| &o.summary));
            chartkey_core::summary::trends(summaries).into_iter().filter(|s| s.points.len() >= 2).collect::<Vec<_>>()
        })
    });
    let chosen = RwSignal::new(0usize);
    view! {
        <Show when=move || series.with(|s| !s.is_empty())>
            <section class="panel" aria-labelledby="trends">
                <h2 id="trends">"Trends"</h2>
                <label class="field">
                    <span>"Measurement"</span>
                    <select on:change=move |ev| chosen.set(event_target_value(&ev).parse().unwrap_or(0)) data-testid="trend-select">
                        {move || series.get().into_iter().enumerate().map(|(i, s)| view! {
                            <option value=i.to_string() selected=move || chosen.get() == i>
                                {format!("{} ({}, {} measurements)", s.name, chartkey_core::units::readable(&s.unit), s.points.len())}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                {move || series.with(|all| all.get(chosen.get()).cloned()).map(|s| view! { <TrendChart series=s /> })}
            </section>
        </Show>
    }
}

/// The day of a point, as the reader writes dates.
fn day(iso: &str) -> String {
    format_fhir_date(&iso.chars().take(10).collect::<String>())
}

#[component]
pub(super) fn TrendChart(series: chartkey_core::summary::Series) -> impl IntoView {
    use chartkey_core::summary::format_number;
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 32.0;
    let unit = chartkey_core::units::readable(&series.unit);
    let lines: Vec<&chartkey_core::summary::Series> =
        std::iter::once(&series).chain(series.second.as_deref()).collect();
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let x0 = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let x1 = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mut lo = all().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let mut hi = all().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    if let Some((l, h)) = series.range {
        lo = lo.min(l.unwrap_or(lo));
        hi = hi.max(h.unwrap_or(hi));
    }
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.02).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let x =
        move |d: f64| LEFT + if x1 > x0 { (d - x0) / (x1 - x0) * (W - LEFT - RIGHT) } else { (W - LEFT - RIGHT) / 2.0 };
    let y = move |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let band = series.range.map(|(l, h)| {
        let (top, bottom) = (y(h.unwrap_or(hi)), y(l.unwrap_or(lo)));
        view! { <rect class="trend-range" x=LEFT y=top width=W - LEFT - RIGHT height=(bottom - top).max(0.0)><title>"Reference range"</title></rect> }
    });
    let (first, last) = (day(&series.points[0].0), day(&series.points[series.points.len() - 1].0));
    let label = format!(
        "{} in {unit}{}, {} measurements from {first} to {last}{}",
        series.name,
        series.second.as_ref().map(|_| " (upper line systolic, lower line diastolic)").unwrap_or_default(),
        series.points.len(),
        match series.range {
            Some((l, h)) => format!(
                "; reference range {} to {}",
                l.map(format_number).unwrap_or_default(),
                h.map(format_number).unwrap_or_default()
            ),
            None => String::new(),
        }
    );
    let drawn = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let points: String =
                line.points.iter().map(|p| format!("{:.1},{:.1}", x(p.1), y(p.2))).collect::<Vec<_>>().join(" ");
            let dots = line
                .points
                .iter()
                .map(|p| {
                    let tip = format!("{} {}: {} {unit}", line.name, day(&p.0), format_number(p.2));
                    view! { <circle class="trend-dot" cx=x(p.1) cy=y(p.2) r="3.5"><title>{tip}</title></circle> }
                })
                .collect_view();
            let class = if i == 0 { "trend-line" } else { "trend-line trend-line-second" };
            view! { <polyline class=class points=points /> {dots} }
        })
        .collect_view();
    // One row per day of the first line; the second line's value that day beside it.
    let rows = series
        .points
        .iter()
        .rev()
        .map(|p| {
            let second = series.second.as_ref().map(|s| {
                let value = s.points.iter().find(|q| q.0 == p.0).map(|q| format!("{} {unit}", format_number(q.2)));
                view! { <td>{value.unwrap_or_default()}</td> }
            });
            view! { <tr><td>{day(&p.0)}</td><td>{format!("{} {unit}", format_number(p.2))}</td>{second}</tr> }
        })
        .collect_view();
    let (first_column, second_column) = match &series.second {
        Some(_) => ("Systolic".to_owned(), Some(view! { <th scope="col">"Diastolic"</th> })),
        None => (format!("{} ({unit})", series.name), None),
    };
    view! {
        <svg class="trend" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label.clone() data-testid="trend-chart">
            {band}
            <line class="trend-axis" x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM />
            <line class="trend-axis" x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM />
            <text class="trend-label" x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end">{format_number(hi)}</text>
            <text class="trend-label" x=LEFT - 6.0 y=H - BOTTOM text-anchor="end">{format_number(lo)}</text>
            <text class="trend-label" x=LEFT y=H - 10.0>{first.clone()}</text>
            <text class="trend-label" x=W - RIGHT y=H - 10.0 text-anchor="end">{last.clone()}</text>
            {drawn}
        </svg>
        <p class="muted">{label}</p>
        <details>
            <summary>"Show as a table"</summary>
            <table class="table" data-testid="trend-table">
                <thead><tr><th scope="col">"Date"</th><th scope="col">{first_column}</th>{second_column}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </details>
    }
}
