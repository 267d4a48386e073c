// All API Tokens (system admins): every user's tokens over GET /admin/tokens,
// filtered by owner and status; revoke with POST /admin/tokens/{id}/revoke;
// generate a service account's with POST /admin/tokens/{id}/generate.
import {
	$, api, enc, el, notify, showError, clearMessages, confirmAction, showLogs, focusAction,
	statusBadge, scopeTags, expiryCell, lastUsedCell, actionButton, showServiceJWT,
	filteredList, renderGrid, revokedSwitch, notRevoked, overlapChoice,
} from "./common.js";

const table = $("#tokens");
const filters = $("#filters");
let tokens = [];
let cursor = null;
let services = new Set(); // the ids of service accounts, whose tokens admins generate
// Any status but revoked, unless Show revoked is on; a status chosen in the
// filters is listed whatever the switch.
const showRevoked = revokedSwitch(() => filters.requestSubmit());

function filterQuery() {
	const q = new URLSearchParams();
	const owner = filters.elements.owner.value.trim();
	const status = filters.elements.status.value || (showRevoked() ? "" : notRevoked);
	if (owner) q.set("owner", owner);
	if (status) q.set("status", status);
	return q.toString();
}

const page = filteredList(filters, filterQuery, load);

async function load(more) {
	try {
		if (!more) services = new Set((await api("GET", "admin/users?kind=service&limit=1000")).users.map((u) => u.id));
		const data = await api("GET", page("admin/tokens", more, cursor));
		tokens = more ? tokens.concat(data.tokens) : data.tokens;
		cursor = data.next_cursor;
		render();
	} catch (err) {
		showError(err);
	}
}

function render() {
	renderGrid(table, tokens.map(row), cursor);
}

function row(t) {
	const revoked = t.status === "revoked";
	const label = `${t.name} of ${t.owner}`;
	const actions = [actionButton("logs", "Logs", t.id, label, () => showLogs(`Logs of “${t.name}” (${t.owner})`, "admin/logs?token=" + enc(t.id)))];
	if (!revoked && services.has(t.owner)) actions.push(actionButton("generate", "Generate", t.id, label, () => generate(t.id)));
	if (!revoked) actions.push(actionButton("revoke", "Revoke", t.id, label, () => revoke(t.id), "link-danger"));
	return el("tr", { class: revoked ? "revoked" : "", dataset: { token: t.id } },
		el("td", {}, t.owner),
		el("td", { class: "name" }, t.name),
		el("td", {}, statusBadge(t)),
		el("td", {}, scopeTags(t)),
		el("td", {}, expiryCell(t)),
		el("td", {}, lastUsedCell(t)),
		el("td", { class: "actions" }, actions));
}

async function revoke(id) {
	const t = tokens.find((x) => x.id === id);
	if (!t) return;
	clearMessages();
	if (!await confirmAction({
		title: `Revoke “${t.name}” of ${t.owner}?`,
		text: `It stops working at once, everywhere, and can never be generated again. ${t.owner} will have to create a new token.`,
		ok: "Revoke",
	})) return;
	try {
		const done = await api("POST", `admin/tokens/${enc(id)}/revoke`);
		tokens = tokens.map((x) => (x.id === id ? done : x));
		render();
		focusAction(id, "logs");
		notify(`Token “${done.name}” of ${done.owner} revoked.`);
	} catch (err) {
		showError(err);
	}
}

async function generate(id) {
	const t = tokens.find((x) => x.id === id);
	if (!t) return;
	clearMessages();
	const again = t.status !== "not_generated";
	const overlap = overlapChoice();
	if (again && !await confirmAction({
		title: `Generate “${t.name}” of ${t.owner} again?`,
		text: "The token in use stops working at once, or later if you choose so below; the service needs the new one.",
		ok: "Generate",
		extra: overlap.field,
	})) return;
	try {
		const res = await api("POST", `admin/tokens/${enc(id)}/generate`, again ? overlap.body() : undefined);
		tokens = tokens.map((x) => (x.id === id ? res.details : x));
		render();
		showServiceJWT(res);
	} catch (err) {
		showError(err);
	}
}

load(false);
