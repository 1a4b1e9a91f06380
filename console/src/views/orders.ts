import { OrderState, type Order } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { describeError, orders } from "../api.ts";
import { fields, h } from "../dom.ts";
import { sleep, time, type View } from "./view.ts";

const FINAL = new Set([OrderState.CONFIRMED, OrderState.CANCELLED]);
const COUNTRIES: [string, string][] = [
  ["GB", "United Kingdom"],
  ["DE", "Germany"],
  ["FR", "France"],
  ["US", "United States"],
  ["XX", "XX (shipping cannot deliver here: the saga refunds)"],
];

/**
 * Place an order and watch its checkout saga move: every state GetOrder reports is listed with
 * when it was first seen, until the order is confirmed or cancelled. A cancelled order that had
 * been charged (it carries a payment id) was refunded by the saga's compensating step.
 */
export function ordersView(): View {
  const list = h("ol", { id: "orders", class: "orders", reversed: true });
  const status = h("p", { class: "status", id: "order-status", role: "status" });
  let stopped = false;

  const follow = async (order: Order) => {
    const states = h("ul", { class: "states" });
    const outcome = h("p", { class: "outcome" });
    const card = h("li", { class: "order", "data-order-id": order.id }, h("code", {}, order.id), ` to ${order.shippingAddress?.countryCode}, ${(Number(order.amountCents) / 100).toFixed(2)} ${order.currency}`, states, outcome);
    list.prepend(card);
    let last: OrderState | undefined;
    let current = order;
    for (;;) {
      if (current.state !== last) {
        last = current.state;
        states.append(h("li", { "data-state": OrderState[current.state] }, `${time(Date.now())} ${OrderState[current.state]}`));
      }
      if (FINAL.has(current.state)) break;
      await sleep(300);
      if (stopped) return;
      try {
        current = (await orders.getOrder({ id: order.id })).order!;
      } catch (error) {
        outcome.textContent = describeError(error);
        return;
      }
    }
    const refunded = current.state === OrderState.CANCELLED && current.paymentId !== "";
    card.dataset["outcome"] = current.state === OrderState.CONFIRMED ? "confirmed" : refunded ? "refunded" : "cancelled";
    outcome.textContent =
      current.state === OrderState.CONFIRMED
        ? `confirmed: payment ${current.paymentId}, shipment ${current.shipmentId}`
        : refunded
          ? `refunded and cancelled: payment ${current.paymentId} was charged, then refunded (${current.cancellationReason})`
          : `cancelled: ${current.cancellationReason}`;
  };

  const place = async (event: Event) => {
    event.preventDefault();
    const values = fields(event.target as HTMLFormElement);
    status.textContent = "…";
    try {
      const answer = await orders.placeOrder({
        items: [{ sku: values["sku"]!, quantity: Number(values["quantity"]), unitPriceCents: BigInt(Math.round(Number(values["price"]) * 100)) }],
        currency: "EUR",
        shippingAddress: { recipient: values["recipient"]!, line1: values["line1"]!, city: values["city"]!, postalCode: values["postalCode"]!, countryCode: values["country"]! },
      });
      status.textContent = "";
      void follow(answer.order!);
    } catch (error) {
      status.textContent = describeError(error);
    }
  };

  const input = (name: string, label: string, value: string, extra: Record<string, string> = {}) => h("label", {}, `${label} `, h("input", { name, value, required: true, ...extra }));
  const element = h(
    "section",
    { class: "panel orders-panel" },
    h("h2", {}, "Place an order"),
    h(
      "form",
      { id: "place-order", onsubmit: (event) => void place(event) },
      input("sku", "Item", "mug"),
      input("quantity", "Quantity", "1", { type: "number", min: "1", max: "100" }),
      input("price", "Unit price (EUR)", "12.50", { type: "number", min: "0.01", step: "0.01" }),
      input("recipient", "Recipient", "Ada Lovelace"),
      input("line1", "Address", "12 St James Sq"),
      input("city", "City", "London"),
      h("label", {}, "Postcode ", h("input", { name: "postalCode", value: "SW1Y 4JH" })),
      h("label", {}, "Country ", h("select", { name: "country", id: "order-country" }, ...COUNTRIES.map(([code, name]) => h("option", { value: code }, name)))),
      h("button", { type: "submit" }, "Place order"),
    ),
    status,
    list,
  );
  return {
    element,
    stop() {
      stopped = true;
    },
  };
}
