// The "Use it" part of the token generated dialog: for the client the user
// picks, the steps to follow and a snippet to paste, built from the report
// API's URL and the new token. Nothing here is kept: the dialog clears the
// snippet when it closes, as it clears the token.

// Quoting for each language, so that a URL the user typed cannot break out
// of its string.
const shell = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
const mString = (s) => `"${s.replaceAll('"', '""')}"`;
const pyString = (s) => JSON.stringify(s);
const psString = (s) => `'${s.replaceAll("'", "''")}'`;

const basicSteps = (where) => [
	`${where}: paste the report API URL above.`,
	"When asked how to connect, choose Basic.",
	"User name: anything, e.g. excel (it is not checked). Password: the token (Copy to clipboard above).",
	"Set the level to the report API's address, so one credential serves all its reports, then Connect.",
];

// clients maps each choice of the select to its steps and snippet.
export const clients = {
	"excel-basic": {
		steps: () => [
			...basicSteps("Excel: Data › Get Data › From Other Sources › From Web"),
			"The token stays in Excel's data source settings, not in the workbook. Or paste this query in the Advanced Editor:",
		],
		code: (url) => `let\n    Source = Json.Document(Web.Contents(${mString(url)}))\nin\n    Source`,
	},
	"excel-m": {
		steps: () => [
			"Power Query Editor: Home › Advanced Editor; paste this query.",
			"When asked how to connect, choose Anonymous: the query sends the token itself.",
			"The token is saved in the workbook: anyone with the file can use it. Prefer the Basic credential.",
		],
		code: (url, token) => `let\n    Source = Json.Document(Web.Contents(${mString(url)}, [\n        Headers = [Authorization = "Bearer ${token}"]\n    ]))\nin\n    Source`,
	},
	powerbi: {
		steps: () => [
			...basicSteps("Power BI Desktop: Get data › Web"),
			"After publishing, in the Power BI service: the semantic model's Settings › Data source credentials › Edit credentials: Authentication method Basic, the same user name, the token as the password; then turn on Scheduled refresh.",
			"Basic keeps the token in the service's encrypted credentials, so scheduled refresh runs unattended, and a new token is one credential edit away.",
		],
		code: (url) => `let\n    Source = Json.Document(Web.Contents(${mString(url)}))\nin\n    Source`,
	},
	postman: {
		steps: () => [
			"New request: GET and the URL below.",
			"Authorization tab: Auth Type Bearer Token; paste the token in Token.",
			"Or Import › Raw text: paste this curl command.",
		],
		code: (url, token) => `curl ${shell(url)} \\\n  --header 'Authorization: Bearer ${token}'`,
	},
	curl: {
		steps: () => ["Run in a shell. -D - prints the answer's headers: Api-Token-Expiration says when the token ends."],
		code: (url, token) => `TOKEN='${token}'\ncurl -fsS -D - -H "Authorization: Bearer $TOKEN" ${shell(url)}`,
	},
	python: {
		steps: () => ["Needs the requests package (pip install requests). Keep the token out of source control: read it from the environment or a secret store."],
		code: (url, token) => `import requests\n\nTOKEN = "${token}"\nres = requests.get(${pyString(url)}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)\nres.raise_for_status()\nprint("token expires:", res.headers.get("Api-Token-Expiration"))\ndata = res.json()`,
	},
	powershell: {
		steps: () => ["PowerShell 7 (-ResponseHeadersVariable needs 6 or later). Keep the token out of scripts you share: read it from a secret store."],
		code: (url, token) => `$token = '${token}'\n$data = Invoke-RestMethod -Uri ${psString(url)} -Headers @{ Authorization = "Bearer $token" } -ResponseHeadersVariable headers\n"token expires: $($headers['Api-Token-Expiration'])"`,
	},
};

// defaultURL is what the URL field starts with: the report list when the
// token may read it, else the data reports' path.
export function defaultURL(apiURL, scopes) {
	if (!apiURL) return "";
	return apiURL + (scopes.includes("meta") ? "/meta" : "/data/");
}
