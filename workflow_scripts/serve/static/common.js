"use strict";
// Shared by every page of serve mode: the token (from ?token= once, then this tab's
// sessionStorage), API calls that carry it, and the navigation bar.
const PVW = (() => {
  const q = new URLSearchParams(location.search);
  if (q.get("token")) sessionStorage.setItem("pvw_token", q.get("token"));
  const token = sessionStorage.getItem("pvw_token") || "";
  const headers = (extra = {}) => Object.assign({"X-PVW-Request": "1"}, token ? {Authorization: "Bearer " + token} : {}, extra);
  const link = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path;
  async function api(method, url, body) {
    const opts = {method, headers: headers(body === undefined ? {} : {"Content-Type": "application/json"})};
    if (body !== undefined) opts.body = JSON.stringify(body);
    const res = await fetch(url, opts);
    let data = {};
    try { data = await res.json(); } catch (e) { data = {message: res.statusText}; }
    data.httpStatus = res.status;
    return data;
  }
  function nav() {
    const bar = document.createElement("nav");
    bar.className = "pvw-nav";
    for (const [path, label] of [["/upload", "Upload"], ["/run", "Run"], ["/review/", "Review"], ["/training", "Training"]]) {
      const a = document.createElement("a");
      a.href = link(path); a.textContent = label;
      if (location.pathname === path || (path === "/upload" && location.pathname === "/")) a.className = "here";
      bar.append(a);
    }
    document.body.prepend(bar);
  }
  const bytes = (n) => n >= 2 ** 30 ? (n / 2 ** 30).toFixed(2) + " GB" : n >= 2 ** 20 ? (n / 2 ** 20).toFixed(1) + " MB" : Math.ceil(n / 1024) + " kB";
  return {token, headers, link, api, nav, bytes};
})();
