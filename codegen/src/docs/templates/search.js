// Optional: a filter box. Without JavaScript the page shows everything, as it should.
(function () {
  var box = document.getElementById("search");
  if (!box || !document.querySelectorAll) return;
  var input = document.createElement("input");
  input.type = "search";
  input.placeholder = "Filter channels, operations, messages, fields";
  input.setAttribute("aria-label", "Filter the page");
  box.appendChild(input);
  var items = [].slice.call(document.querySelectorAll("[data-search]"));
  var rows = [].slice.call(document.querySelectorAll("[data-search] tbody tr"));
  input.addEventListener("input", function () {
    var q = input.value.trim().toLowerCase();
    items.forEach(function (el) {
      el.hidden = q !== "" && el.textContent.toLowerCase().indexOf(q) < 0;
    });
    rows.forEach(function (tr) {
      tr.classList.toggle("hit", q !== "" && tr.textContent.toLowerCase().indexOf(q) >= 0);
    });
  });
})();
