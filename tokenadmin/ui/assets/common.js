// Helpers shared by the pages: calls of the JSON routes, building DOM from
// data (always as text, never as HTML), dates, dialogs and their focus.
//
// A JWT is only ever put in the one-time dialog of the "My tokens" page: it
// is not logged, not stored, and never part of a URL.

// The handler's root, relative to this page, so that the pages also work
// when the handler is mounted under a path prefix.
const root = new URL(document.body.dataset.root || "./", location.href);

export const $ = (sel, from = document) => from.querySelector(sel);

// ApiError is a refusal from the JSON routes, with the sentence for people.
export class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

// api calls a JSON route (a path relative to the root, such as "tokens").
// body, when given, is sent as application/json.
export async function api(method, path, body) {
	const init = { method, credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } };
	if (body !== undefined) {
		init.headers["Content-Type"] = "application/json";
		init.body = JSON.stringify(body);
	}
	let res;
	try {
		res = await fetch(new URL(path, root), init);
	} catch {
		throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.");
	}
	let data = null;
	try {
		data = await res.json();
	} catch {
		data = null;
	}
	if (!res.ok) {
		const msg = data && typeof data.message === "string" ? sentence(data.message) : `The server answered ${res.status} ${res.statusText}.`;
		throw new ApiError(res.status, (data && data.error) || "http_" + res.status, msg);
	}
	return data;
}

export const enc = encodeURIComponent;

export function sentence(s) {
	if (!s) return s;
	s = s[0].toUpperCase() + s.slice(1);
	return /[.!?]$/.test(s) ? s : s + ".";
}

// el builds an element. Children are nodes or text; text is never parsed as
// HTML, so names typed by users cannot inject markup.
export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === undefined || v === null || v === false) continue;
		if (k === "class") e.className = v;
		else if (k === "dataset") Object.assign(e.dataset, v);
		else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
		else e.setAttribute(k, v === true ? "" : String(v));
	}
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		e.append(c instanceof Node ? c : String(c));
	}
	return e;
}

// Dates are shown in the reader's time zone; the exact UTC time is in the
// title and the datetime attribute.
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function fmtTime(iso) {
	return iso ? dateFmt.format(new Date(iso)) : "";
}

// sub is a second line in a cell, after a space so that it reads apart.
export function sub(...children) {
	return [" ", el("span", { class: "sub" }, ...children)];
}

export function timeEl(iso, none = "—") {
	if (!iso) return el("span", { class: "none" }, none);
	return el("time", { datetime: iso, title: iso }, fmtTime(iso));
}

export const expiryLabels = {
	"1d": "1 day", "7d": "7 days", "30d": "30 days", "60d": "60 days",
	"90d": "90 days", "1y": "1 year", never: "Never",
};

// statusBadge: the status, and "Regenerate to apply" while a widening edit
// waits for the next generation.
export function statusBadge(t) {
	return [el("span", { class: "badge status-" + t.status }, t.status_label),
		t.regenerate_to_apply ? sub(el("strong", { class: "pending" }, "Regenerate to apply")) : null,
		t.previous_valid_until ? sub("Previous token valid until ", timeEl(t.previous_valid_until)) : null];
}

// scopeTags: the token's scopes; one that the token in use cannot use (added
// since its generation, or no longer declared) is struck through.
export function scopeTags(t) {
	const live = t.status === "generated_active" || t.status === "generated_inactive";
	return t.scopes.map((s) => live && !t.effective_scopes.includes(s)
		? el("span", { class: "tag off", title: "Not in the token in use: regenerate to apply" }, s)
		: el("span", { class: "tag" }, s));
}

// expiryCell: the end date once generated, else the chosen lifetime.
export function expiryCell(t) {
	const label = expiryLabels[t.expires] || t.expires;
	if (t.expires_at) return [timeEl(t.expires_at), sub(label)];
	if (t.expires === "never") return [el("span", {}, "Never")];
	return [el("span", {}, label), sub("from generation")];
}

export function lastUsedCell(t) {
	return [timeEl(t.last_used_at, "Never"), t.last_used_ip ? sub(t.last_used_ip) : null];
}

// renderGrid draws a list's rows in table's body, #empty instead when there
// are none, and #more while there is a next page.
export function renderGrid(table, rows, more) {
	$("tbody", table).replaceChildren(...rows);
	labelCells(table);
	$("#empty").hidden = rows.length > 0;
	table.hidden = rows.length === 0;
	$("#more").hidden = !more;
}

// labelCells gives each body cell of table its column's heading as
// data-label: below 640 px wide a row is a card, and each value is shown
// with its label (app.css).
export function labelCells(table) {
	const heads = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
	for (const tr of table.tBodies[0].rows) {
		for (const td of tr.cells) td.dataset.label = heads[td.cellIndex];
	}
}

// actionButton is a row button; data-id and data-action let focus find
// its replacement when the grid is drawn again.
export function actionButton(action, text, id, name, onclick, extra = "") {
	return el("button", {
		type: "button", class: ("small " + extra).trim(), dataset: { id, action },
		"aria-label": `${text} ${name}`, onclick,
	}, text);
}

// Page messages.
let noticeTimer;
export function notify(msg) {
	const n = $("#notice");
	clearMessages();
	n.textContent = msg;
	clearTimeout(noticeTimer);
	noticeTimer = setTimeout(() => { n.textContent = ""; }, 10000);
}

export function showError(err) {
	const e = $("#error");
	clearMessages();
	e.textContent = err.message || String(err);
	e.hidden = false;
}

// clearMessages clears the notice and the error of the last action when the
// next one starts, so that none outlives what it was about ("created:
// generate it" once the token is generated).
export function clearMessages() {
	const e = $("#error");
	e.hidden = true;
	e.textContent = "";
	clearTimeout(noticeTimer);
	$("#notice").textContent = "";
}

export function formError(dlg, err) {
	const p = $(".form-error", dlg);
	p.textContent = err ? err.message || String(err) : "";
	p.hidden = !err;
}

// Dialogs are modal (the rest of the page is inert), close with Escape or
// their Cancel/Close button, and give focus back to the control that opened
// them, or to its replacement if the grid was drawn again meanwhile.
export function openDialog(dlg, focus) {
	const from = document.activeElement;
	dlg.opener = null;
	if (from && from !== document.body && !dlg.contains(from)) {
		dlg.opener = { el: from, id: from.dataset && from.dataset.id, action: from.dataset && from.dataset.action };
	}
	const fe = $(".form-error", dlg);
	if (fe) formError(dlg, null);
	dlg.showModal();
	(focus || dlg.querySelector("input, select, textarea, button")).focus();
}

// returnFocusTo says where focus goes when dlg closes.
export function returnFocusTo(dlg, id, action) {
	dlg.opener = { el: null, id, action };
}

// focusAction focuses a row's button after the grid was drawn again.
export function focusAction(id, action) {
	const b = document.querySelector(`[data-id="${CSS.escape(id)}"][data-action="${action}"]`);
	if (b) b.focus();
}

function restoreFocus(dlg) {
	const o = dlg.opener;
	dlg.opener = null;
	if (document.querySelector("dialog[open]")) return; // another dialog took over
	let target = o && o.el;
	if ((!target || !target.isConnected) && o && o.id) {
		const id = CSS.escape(o.id);
		target = document.querySelector(`[data-id="${id}"][data-action="${o.action}"]`) || document.querySelector(`[data-id="${id}"]`);
	}
	if (!target || !target.isConnected) target = $("#main");
	target.focus();
}

document.addEventListener("close", (e) => {
	if (e.target instanceof HTMLDialogElement) restoreFocus(e.target);
}, true);

document.addEventListener("click", (e) => {
	const b = e.target.closest("[data-close]");
	if (b) b.closest("dialog").close();
});

// overlapChoice is the question of a regeneration: when the token in use
// stops working (at once, or after an overlap, so that a scheduled refresh
// can switch to the new one without failing). field goes in confirmAction's
// extra; body() is the request body the choice asks for.
export function overlapChoice() {
	const select = el("select", { id: "confirm-overlap" },
		el("option", { value: "" }, "at once"),
		el("option", { value: "1h" }, "in 1 hour"),
		el("option", { value: "24h" }, "in 24 hours"));
	return {
		field: el("div", { class: "field" }, el("label", { for: "confirm-overlap" }, "The token in use stops working"), select),
		body: () => (select.value ? { overlap: select.value } : undefined),
	};
}

// confirmAction asks before a destructive action; Cancel has the focus.
// extra, an element, is shown under the text: a choice the caller reads
// once the answer is yes.
// It answers on the click or the Escape key itself, not on the dialog's
// close event, which comes later and may belong to a previous question.
let pendingConfirm = null;

export function confirmAction({ title, text, ok, extra }) {
	const dlg = $("#confirm-dialog");
	const okBtn = $("#confirm-ok");
	const cancelBtn = $("#confirm-cancel");
	if (pendingConfirm) pendingConfirm(false);
	$("#confirm-title").textContent = title;
	$("#confirm-text").textContent = text;
	$("#confirm-extra").replaceChildren(...(extra ? [extra] : []));
	okBtn.textContent = ok;
	return new Promise((resolve) => {
		const listening = new AbortController();
		const answer = (yes) => {
			listening.abort();
			pendingConfirm = null;
			if (dlg.open) dlg.close();
			resolve(yes);
		};
		pendingConfirm = answer;
		const opts = { signal: listening.signal };
		okBtn.addEventListener("click", () => answer(true), opts);
		cancelBtn.addEventListener("click", () => answer(false), opts);
		dlg.addEventListener("cancel", () => answer(false), opts);
		openDialog(dlg, cancelBtn);
	});
}

// busy disables a button while fn runs.
export async function busy(button, fn) {
	button.disabled = true;
	try {
		return await fn();
	} finally {
		button.disabled = false;
	}
}

// The token lists hide revoked tokens, asking the server for the others
// (status=notRevoked), unless "Show revoked" (#show-revoked) is on. The
// choice is kept in the page's URL (?revoked=show), so that a reload or a
// bookmark keeps it. revokedSwitch wires the switch to onChange and returns
// whether it is on.
export const notRevoked = "not_generated,generated_inactive,generated_active,expired";

export function revokedSwitch(onChange) {
	const box = $("#show-revoked");
	box.checked = new URLSearchParams(location.search).get("revoked") === "show";
	box.addEventListener("change", () => {
		const url = new URL(location.href);
		if (box.checked) url.searchParams.set("revoked", "show");
		else url.searchParams.delete("revoked");
		history.replaceState(null, "", url);
		onChange();
	});
	return () => box.checked;
}

// filteredList wires an admin list's filter form (#filters is filters), its
// Clear (#filter-clear) and More (#more) buttons to load: load(false) fetches
// the first page with the query toQuery reads from the form, load(true) the
// next one. It returns page(route, more, cursor), the path of the page to
// fetch.
export function filteredList(filters, toQuery, load) {
	let query = toQuery();
	filters.addEventListener("submit", (e) => {
		e.preventDefault();
		clearMessages();
		query = toQuery();
		busy(filters.querySelector("button[type=submit]"), () => load(false));
	});
	$("#filter-clear").addEventListener("click", () => {
		filters.reset();
		query = toQuery();
		load(false);
	});
	$("#more").addEventListener("click", (e) => busy(e.currentTarget, () => load(true)));
	return (route, more, cursor) => route + "?limit=100" + (query ? "&" + query : "") + (more && cursor ? "&cursor=" + enc(cursor) : "");
}

// showLogs opens the logs dialog on a log list route.
export function showLogs(title, path) {
	const dlg = $("#logs-dialog");
	const tbody = $("#logs-table tbody");
	const more = $("#logs-more");
	$("#logs-title").textContent = title;
	tbody.replaceChildren();
	$("#logs-empty").hidden = true;
	more.hidden = true;
	let cursor = null;
	const load = async () => {
		const sep = path.includes("?") ? "&" : "?";
		try {
			const data = await api("GET", path + sep + "limit=100" + (cursor ? "&cursor=" + enc(cursor) : ""));
			for (const l of data.logs) tbody.append(logRow(l));
			labelCells($("#logs-table"));
			cursor = data.next_cursor;
			more.hidden = !cursor;
			$("#logs-empty").hidden = tbody.children.length > 0;
		} catch (err) {
			formError(dlg, err);
		}
	};
	more.onclick = () => busy(more, load);
	openDialog(dlg, $("[data-close]", dlg));
	return load();
}

const activityLabels = {
	CREATE: "Create", GENERATE: "Generate", UPDATE: "Update", REVOKE: "Revoke", AUTHENTICATE: "Authenticate",
	USER_CREATE: "User created", USER_UPDATE: "User changed", ROLE_GRANT: "Role granted", ROLE_REMOVE: "Role removed",
};

function logRow(l) {
	const when = [timeEl(l.activity_on)];
	if (l.count > 1 && l.last_on && l.last_on !== l.activity_on) when.push(sub("last ", timeEl(l.last_on)));
	const result = l.result
		? [el("span", { class: "result-" + l.result }, l.result), l.reason ? sub(l.reason) : null]
		: [l.reason ? el("span", {}, l.reason) : el("span", { class: "none" }, "—")];
	const ua = l.user_agent || "";
	return el("tr", {},
		el("td", {}, when),
		el("td", {}, activityLabels[l.activity] || l.activity, l.token_name ? sub(l.token_name) : null),
		el("td", {}, l.activity_by),
		el("td", {}, result),
		el("td", {}, l.client_ip || "—"),
		el("td", { title: ua }, ua.length > 60 ? ua.slice(0, 57) + "…" : ua || "—"),
		el("td", { class: "num" }, String(l.count)));
}

// copy puts the textarea's text on the clipboard; where the Clipboard API is
// missing (a page not served over https or from localhost) it falls back to
// selecting the text and the copy command.
export async function copy(textarea) {
	if (navigator.clipboard && navigator.clipboard.writeText) {
		try {
			await navigator.clipboard.writeText(textarea.value);
			return true;
		} catch {
			// fall back below
		}
	}
	textarea.focus();
	textarea.select();
	try {
		return document.execCommand("copy");
	} catch {
		return false;
	}
}

// showServiceJWT shows a service account token's new JWT (the answer of POST
// admin/tokens/{id}/generate) in the admin JWT dialog, once: it is dropped
// when the dialog closes.
export function showServiceJWT(res) {
	const dlg = $("#admin-jwt-dialog");
	const value = $("#admin-jwt-value");
	$("#admin-jwt-name").textContent = `${res.details.name} of ${res.details.owner}`;
	$("#admin-jwt-expires").textContent = res.expires_at ? fmtTime(res.expires_at) : "Never";
	$("#admin-jwt-copied").textContent = "";
	value.value = res.token;
	$("#admin-jwt-copy").onclick = async () => {
		const ok = await copy(value);
		$("#admin-jwt-copied").textContent = ok ? "Copied to the clipboard." : "Could not copy: select the token and press Ctrl+C.";
	};
	dlg.addEventListener("close", () => { value.value = ""; }, { once: true });
	openDialog(dlg, $("#admin-jwt-copy"));
}
