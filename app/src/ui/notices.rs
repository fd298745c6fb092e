//! Notices in the browser: while signed in, the live stream of new ones
//! (an `EventSource` on `/api/notices/stream`, which reconnects by itself),
//! the unread count in the header, a short announcement of each new notice,
//! and the inbox page.

use std::cell::RefCell;

use chartkey_core::fhir::Category;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{EventSource, MessageEvent};

use super::components::{PageHead, format_datetime};
use super::session::Session;
use crate::api::{self, Inbox, NoticeKind, NoticeView};

/// How long an announcement stays on screen.
const TOAST_MS: u32 = 8_000;

#[derive(Clone, Copy)]
pub struct Notices {
    pub inbox: RwSignal<Option<Inbox>>,
    /// The newest notice, announced for a few seconds.
    pub toast: RwSignal<Option<NoticeView>>,
}

/// An open stream and the listeners it calls.
type Open = (EventSource, Vec<Closure<dyn Fn(MessageEvent)>>);

thread_local! {
    /// The open stream (the page's lifetime at most).
    static STREAM: RefCell<Option<Open>> = const { RefCell::new(None) };
}

impl Notices {
    /// Follows the session: a stream while someone is signed in, none after.
    pub fn install(session: Session) -> Self {
        let notices = Self { inbox: RwSignal::new(None), toast: RwSignal::new(None) };
        provide_context(notices);
        // Only a change of account (not an unlock, which sets the same one
        // again) reconnects.
        let account_id = Memo::new(move |_| session.account.with(|a| a.as_ref().map(|a| a.account_id.clone())));
        Effect::new(move || {
            let account = account_id.get();
            close();
            notices.inbox.set(None);
            if account.is_some() {
                notices.open();
            }
        });
        notices
    }

    fn open(self) {
        let Ok(source) = EventSource::new("/api/notices/stream") else { return };
        let on_notice = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(data) = event.data().as_string() else { return };
            let Ok(notice) = serde_json::from_str::<NoticeView>(&data) else { return };
            self.arrived(notice);
        });
        let on_lagged = Closure::<dyn Fn(MessageEvent)>::new(move |_| self.reload());
        let on_open = Closure::<dyn Fn(MessageEvent)>::new(move |_| self.reload());
        let _ = source.add_event_listener_with_callback("notice", on_notice.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("lagged", on_lagged.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
        STREAM.with(|s| *s.borrow_mut() = Some((source, vec![on_notice, on_lagged, on_open])));
    }

    /// Reads the inbox again (on connecting, and after missed notices).
    pub fn reload(self) {
        leptos::task::spawn_local(async move {
            if let Ok(inbox) = api::notices_list().await {
                self.inbox.set(Some(inbox));
            }
        });
    }

    fn arrived(self, notice: NoticeView) {
        self.inbox.update(|inbox| {
            let inbox = inbox.get_or_insert_with(|| Inbox { unread: 0, notices: Vec::new() });
            if !inbox.notices.iter().any(|n| n.id == notice.id) {
                inbox.unread += 1;
                inbox.notices.insert(0, notice.clone());
            }
        });
        let id = notice.id;
        self.toast.set(Some(notice));
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(TOAST_MS).await;
            if self.toast.with_untracked(|t| t.as_ref().map(|n| n.id)) == Some(id) {
                self.toast.set(None);
            }
        });
    }

    pub fn unread(&self) -> u32 {
        self.inbox.with(|i| i.as_ref().map_or(0, |i| i.unread))
    }
}

fn close() {
    STREAM.with(|s| {
        if let Some((source, _listeners)) = s.borrow_mut().take() {
            source.close();
        }
    });
}

pub fn use_notices() -> Notices {
    expect_context::<Notices>()
}

/// A notice in words.
pub fn notice_text(n: &NoticeView) -> String {
    let kind = n.category.and_then(Category::from_code).map(Category::label).unwrap_or("record");
    match n.kind {
        NoticeKind::Access => format!("{} opened one of your records ({kind}).", n.actor_name),
        NoticeKind::WriteBack => format!("{} added a record to your chart ({kind}).", n.actor_name),
        NoticeKind::LinkUse => match &n.link {
            Some(link) => format!("One of your links was opened by \u{201c}{}\u{201d}.", link.recipient),
            None => "One of your links was opened.".to_owned(),
        },
        NoticeKind::EmergencyNamed => format!("{} named you as an emergency contact.", n.actor_name),
        NoticeKind::EmergencyRequested => match n.opens_at.map(crate::ui::components::format_datetime) {
            Some(at) => format!("{} asked for emergency access. It opens on {at} unless you refuse.", n.actor_name),
            None => format!("{} asked for emergency access.", n.actor_name),
        },
        NoticeKind::EmergencyRefused => format!("{} refused your request for emergency access.", n.actor_name),
        NoticeKind::EmergencyAccessed => format!("{} opened your summary with emergency access.", n.actor_name),
        NoticeKind::EmergencyRemoved => format!("{} removed you as an emergency contact.", n.actor_name),
    }
}

/// The announcement of the newest notice.
#[component]
pub fn Toast() -> impl IntoView {
    let notices = use_notices();
    view! {
        <div class="toast-region" role="status" aria-live="polite">
            {move || notices.toast.get().map(|n| view! {
                <div class="toast" data-testid="toast" data-notice=n.id.to_string()>
                    <span>{notice_text(&n)}</span>
                    <button type="button" class="button button-small button-quiet" aria-label="Dismiss"
                        on:click=move |_| notices.toast.set(None)>"×"</button>
                </div>
            })}
        </div>
    }
}

/// The inbox page: every notice, newest first; visiting marks them read.
#[component]
pub fn InboxPage() -> impl IntoView {
    let notices = use_notices();
    let error = RwSignal::new(None::<String>);
    // Mark what is shown as read, once it is loaded.
    Effect::new(move || {
        let newest_unread =
            notices.inbox.with(|i| i.as_ref().filter(|i| i.unread > 0).and_then(|i| i.notices.first().map(|n| n.id)));
        if let Some(up_to) = newest_unread {
            leptos::task::spawn_local(async move {
                match api::notices_read(up_to).await {
                    Ok(inbox) => notices.inbox.set(Some(inbox)),
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        }
    });
    notices.reload();
    view! {
        <PageHead title="Inbox" error=error
            lead="Every time someone opens a record you shared, or adds one to your chart, you are told here." />
        {move || notices.inbox.get().map(|inbox| {
            if inbox.notices.is_empty() {
                view! { <p class="muted">"Nothing yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="list inbox" data-testid="inbox">
                        {inbox.notices.into_iter().map(|n| view! {
                            <li class:unread=!n.read data-testid="notice">
                                <span>{notice_text(&n)}</span>
                                <br />
                                <small class="muted">{format_datetime(n.at)} " · "<code title=n.tx.to_string()>{format!("{}…", &n.tx.to_string()[..12])}</code></small>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }
        })}
    }
}
