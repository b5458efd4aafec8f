// Optional: a filter box. Without JavaScript the page shows everything, as it should.
// Each [data-search] item (server, channel, operation, message, schema, security scheme) stays
// when its text mentions the term; a channel also stays for a matching operation. The overview
// is prose (the browser's find is the tool for it) and would push the results a screen down, so
// it steps aside while filtering. Sections, contents entries and at-a-glance rows follow what
// they hold or link to, so nothing is left pointing at a hidden item; matching table rows are
// highlighted.
(function () {
  var box = document.getElementById("search");
  if (!box || !document.querySelectorAll) return;
  function all(selector, root) {
    return [].slice.call((root || document).querySelectorAll(selector));
  }
  function shown(el) {
    for (; el; el = el.parentElement) if (el.hidden) return false;
    return true;
  }
  function target(link) {
    var href = link && link.getAttribute("href");
    return href && href.charAt(0) === "#" ? document.getElementById(href.slice(1)) : null;
  }
  var input = document.createElement("input");
  input.type = "search";
  input.placeholder = "Filter by name or field";
  input.title = "Hide what does not mention this text";
  input.setAttribute("aria-label", "Filter the page");
  var status = document.createElement("p");
  status.className = "filter-status";
  status.setAttribute("aria-live", "polite");
  box.appendChild(input);
  box.appendChild(status);
  var items = all("[data-search]");
  var rows = all("[data-search] tbody tr");
  var sections = all("main > section");
  var glance = all("#glance tbody tr");
  var toc = all(".toc li");
  var overview = document.getElementById("info");
  input.addEventListener("input", function () {
    var q = input.value.trim().toLowerCase();
    var on = q !== "";
    if (overview) overview.hidden = on;
    items.forEach(function (el) {
      el.hidden = on && el.textContent.toLowerCase().indexOf(q) < 0;
    });
    rows.forEach(function (tr) {
      tr.classList.toggle("hit", on && tr.textContent.toLowerCase().indexOf(q) >= 0);
    });
    glance.forEach(function (tr) {
      tr.hidden = on && !shown(target(tr.querySelector("a")));
    });
    sections.forEach(function (section) {
      var inner = section.id === "glance" ? glance : all("[data-search]", section);
      if (inner.length) section.hidden = inner.every(function (el) { return el.hidden; });
    });
    toc.forEach(function (li) {
      li.hidden = on && !shown(target(li.querySelector("a")));
    });
    var count = items.filter(shown).length;
    status.textContent = !on ? "" : count ? count + " of " + items.length + " shown"
      : "Nothing mentions \u201c" + input.value.trim() + "\u201d";
  });
})();
