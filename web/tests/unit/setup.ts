// jsdom lacks these; the router and Element Plus call them.
window.scrollTo = () => undefined;
if (!("ResizeObserver" in window)) {
  (window as unknown as { ResizeObserver: unknown }).ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}
