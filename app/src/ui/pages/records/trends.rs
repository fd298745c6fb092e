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
                                {format!("{} ({}, {} measurements)", s.name, s.unit, s.points.len())}
                            </option>
                        }).collect_view()}
                    </select>
                </label>
                {move || series.with(|all| all.get(chosen.get()).cloned()).map(|s| view! { <TrendChart series=s /> })}
            </section>
        </Show>
    }
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
    let (x0, x1) = (series.points[0].1, series.points[series.points.len() - 1].1);
    let mut lo = series.points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let mut hi = series.points.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    if let Some((l, h)) = series.range {
        lo = lo.min(l.unwrap_or(lo));
        hi = hi.max(h.unwrap_or(hi));
    }
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.02).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let x =
        move |d: f64| LEFT + if x1 > x0 { (d - x0) / (x1 - x0) * (W - LEFT - RIGHT) } else { (W - LEFT - RIGHT) / 2.0 };
    let y = move |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let line: String =
        series.points.iter().map(|p| format!("{:.1},{:.1}", x(p.1), y(p.2))).collect::<Vec<_>>().join(" ");
    let band = series.range.map(|(l, h)| {
        let (top, bottom) = (y(h.unwrap_or(hi)), y(l.unwrap_or(lo)));
        view! { <rect class="trend-range" x=LEFT y=top width=W - LEFT - RIGHT height=(bottom - top).max(0.0)><title>"Reference range"</title></rect> }
    });
    let first = series.points[0].0.chars().take(10).collect::<String>();
    let last = series.points[series.points.len() - 1].0.chars().take(10).collect::<String>();
    let label = format!(
        "{} in {}, {} measurements from {first} to {last}{}",
        series.name,
        series.unit,
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
    let dots = series
        .points
        .iter()
        .map(|p| {
            let tip = format!("{}: {} {}", p.0.chars().take(10).collect::<String>(), format_number(p.2), series.unit);
            view! { <circle class="trend-dot" cx=x(p.1) cy=y(p.2) r="3.5"><title>{tip}</title></circle> }
        })
        .collect_view();
    let rows = series
        .points
        .iter()
        .rev()
        .map(|p| view! { <tr><td>{p.0.chars().take(10).collect::<String>()}</td><td>{format!("{} {}", format_number(p.2), series.unit)}</td></tr> })
        .collect_view();
    view! {
        <svg class="trend" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label.clone() data-testid="trend-chart">
            {band}
            <line class="trend-axis" x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM />
            <line class="trend-axis" x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM />
            <text class="trend-label" x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end">{format_number(hi)}</text>
            <text class="trend-label" x=LEFT - 6.0 y=H - BOTTOM text-anchor="end">{format_number(lo)}</text>
            <text class="trend-label" x=LEFT y=H - 10.0>{first.clone()}</text>
            <text class="trend-label" x=W - RIGHT y=H - 10.0 text-anchor="end">{last.clone()}</text>
            <polyline class="trend-line" points=line />
            {dots}
        </svg>
        <p class="muted">{label}</p>
        <details>
            <summary>"Show as a table"</summary>
            <table class="table" data-testid="trend-table">
                <thead><tr><th scope="col">"Date"</th><th scope="col">{format!("{} ({})", series.name, series.unit)}</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </details>
    }
}
