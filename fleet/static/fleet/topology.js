/* The topology map: draws the graph the page carries in #topology-data with Cytoscape.js.
   Devices are rounded boxes, apps circles, shared database servers diamonds; the fill
   colour is the status at a glance (the legend on the page names each colour). Clicking
   a node opens its page. */
(function () {
  "use strict";

  var COLOURS = { ok: "#1f9d55", busy: "#2f6fde", trouble: "#c58a00", down: "#d1343b", stopped: "#9aa4af" };
  var SHAPES = { device: "round-rectangle", app: "ellipse", shared_db: "diamond" };

  function start() {
    var box = document.getElementById("topology-map");
    var data = document.getElementById("topology-data");
    if (!box || !data || typeof window.cytoscape !== "function") return;
    var graph = JSON.parse(data.textContent);
    var elements = [];
    graph.nodes.forEach(function (node) {
      elements.push({ group: "nodes", data: node, classes: node.kind });
    });
    graph.edges.forEach(function (edge, index) {
      elements.push({
        group: "edges",
        data: { id: "edge-" + index, source: edge.source, target: edge.target, kind: edge.kind },
        classes: edge.kind
      });
    });
    var cy = window.cytoscape({
      container: box,
      elements: elements,
      minZoom: 0.2,
      maxZoom: 3,
      style: [
        {
          selector: "node",
          style: {
            label: "data(label)",
            "font-size": 11,
            "text-valign": "bottom",
            "text-margin-y": 4,
            "text-wrap": "ellipsis",
            "text-max-width": 110,
            color: "#1d232b",
            "background-color": function (n) { return COLOURS[n.data("health")] || "#9aa4af"; },
            shape: function (n) { return SHAPES[n.data("kind")] || "ellipse"; },
            width: 22,
            height: 22,
            "border-width": 1,
            "border-color": "#ffffff"
          }
        },
        {
          selector: "node.device",
          style: {
            width: 54, height: 34, "font-size": 13, "font-weight": "bold",
            "text-valign": "center", "text-margin-y": 0, "text-halign": "center",
            color: "#ffffff", "text-outline-width": 2,
            "text-outline-color": function (n) { return COLOURS[n.data("health")] || "#9aa4af"; },
            "text-max-width": 200, "text-wrap": "none", "padding": 6
          }
        },
        { selector: "node.shared_db", style: { width: 28, height: 28 } },
        { selector: "edge", style: { width: 1.5, "line-color": "#c3c9d1", "curve-style": "straight" } },
        {
          selector: "edge.uses",
          style: {
            "line-style": "dashed", "line-color": "#7a8594", "target-arrow-shape": "triangle",
            "target-arrow-color": "#7a8594", "arrow-scale": 0.8
          }
        },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d232b" } }
      ],
      layout: {
        name: "cose",
        animate: false,
        randomize: false,
        nodeDimensionsIncludeLabels: true,
        idealEdgeLength: function (edge) { return edge.data("kind") === "uses" ? 140 : 60; },
        edgeElasticity: function (edge) { return edge.data("kind") === "uses" ? 20 : 200; },
        nodeRepulsion: function () { return 9000; },
        componentSpacing: 80,
        padding: 24
      }
    });
    cy.on("tap", "node", function (event) {
      var url = event.target.data("url");
      if (url) window.location.href = url;
    });
    cy.on("mouseover", "node", function (event) {
      box.style.cursor = "pointer";
      box.title = event.target.data("label") + ": " + event.target.data("status_words");
    });
    cy.on("mouseout", "node", function () { box.style.cursor = ""; box.title = ""; });
    // live colours: the statuses again every 30 s (the layout stays where it is)
    var source = box.getAttribute("data-source");
    if (source && window.fetch) {
      window.setInterval(function () {
        window.fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (answer) { return answer.ok ? answer.json() : null; })
          .then(function (fresh) {
            if (!fresh) return;
            fresh.nodes.forEach(function (node) {
              var drawn = cy.getElementById(node.id);
              if (drawn.nonempty()) drawn.data({ status: node.status, status_words: node.status_words, health: node.health, label: node.label });
            });
          })
          .catch(function () { /* the next round tries again */ });
      }, 30000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
