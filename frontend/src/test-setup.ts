// SPDX-License-Identifier: Apache-2.0
import "@testing-library/jest-dom/vitest";
import { configure } from "@testing-library/react";

// findBy…/waitFor wait this long for the page to get there: generous, for busy CI machines.
configure({ asyncUtilTimeout: 5000 });

// jsdom has no layout, hence no ResizeObserver; charts (recharts' ResponsiveContainer) ask
// for one. This one never reports a size: charts render their wrappers, not their drawing.
if (!("ResizeObserver" in globalThis)) {
  class NoLayoutResizeObserver {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
  }
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = NoLayoutResizeObserver;
}
