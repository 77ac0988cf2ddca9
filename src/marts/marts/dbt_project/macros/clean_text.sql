{#- Text as loaded may carry "NA" or blanks for unknown values: both become NULL. -#}
{% macro clean_text(column) -%}
    nullif(nullif(trim({{ column }}::text), ''), 'NA')
{%- endmacro %}
