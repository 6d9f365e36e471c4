// Accessible tabs (WAI-ARIA tabs pattern): click, or arrow keys / Home / End on the tab list.
// The selected tab is kept in the URL's hash, so a link (or a reload) opens the same tab.

export function setupTabs(onSelect) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const names = tabs.map((tab) => tab.id.replace(/^tab-/, ""));

  function select(index, focus) {
    tabs.forEach((tab, i) => {
      const selected = i === index;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    });
    if (focus) tabs[index].focus();
    if (location.hash !== `#${names[index]}`) history.replaceState(null, "", `#${names[index]}`);
    onSelect(names[index]);
  }

  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(i, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select((moves[event.key] + tabs.length) % tabs.length, true);
    });
  });
  const fromHash = names.indexOf(location.hash.slice(1));
  select(fromHash >= 0 ? fromHash : 0, false);
}
